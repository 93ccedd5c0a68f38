"""Check-in on the lab day: the service (tap, twice, undo, search, counts, walk-ins) and the
pages (without JavaScript: forms and redirects; with it: the fragment)."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.models import (
    Consent,
    Event,
    FollowUp,
    Lab,
    Prospect,
    Registration,
    Sequence,
    SequenceStep,
    Source,
)
from crm.services import checkin, lab_day, prospects, registrations, waitlist
from crm.timeutil import format_local_time, utcnow
from tests.conftest import csrf_token, login
from tests.integration.conftest import lab_afternoon

PHONE = "+33611223344"
_numbers = itertools.count(12_000_000)


def attendee(
    world,
    first: str,
    last: str,
    organisation: str = "",
    status: str = "confirmed",
    phone: str | None = None,
) -> Registration:
    """A person registered in the world's lab through the real services, moved to `status`."""
    person = prospects.ProspectInput(
        first_name=first,
        last_name=last,
        organisation=organisation,
        phone=phone or f"06{next(_numbers)}",
    )
    prospect, _ = prospects.save(person, world["source"], None)
    registration, _ = registrations.register(prospect, world["lab"], None)
    if status != "to_contact":
        registrations.transition(registration, status, None)
    db.session.commit()
    return registration


def status_events(registration: Registration) -> list[Event]:
    return list(
        db.session.scalars(
            sa.select(Event)
            .where(Event.registration_id == registration.id, Event.kind == "registration.status")
            .order_by(Event.id)
        )
    )


def open_rows(registration: Registration, kind: str) -> list[FollowUp]:
    return list(
        db.session.scalars(
            sa.select(FollowUp)
            .join(SequenceStep, SequenceStep.id == FollowUp.step_id)
            .join(Sequence, Sequence.id == SequenceStep.sequence_id)
            .where(
                FollowUp.registration_id == registration.id,
                Sequence.kind == kind,
                FollowUp.status.in_(("scheduled", "queued")),
            )
        )
    )


@pytest.fixture(autouse=True)
def _lab_day(world):  # type: ignore[no-untyped-def]
    """The world's lab takes place today: the check-in is open."""
    world["lab"].starts_at = utcnow() - timedelta(hours=1)
    world["lab"].ends_at = utcnow() + timedelta(hours=3)
    db.session.commit()


# --- The service -----------------------------------------------------------------------------


def test_check_in_opens_on_the_lab_day(world):
    reg = attendee(world, "Léa", "Martin")
    world["lab"].starts_at = lab_afternoon(days=2)
    world["lab"].ends_at = world["lab"].starts_at + timedelta(hours=4)
    with pytest.raises(checkin.CheckInError, match="L'accueil ouvre le jour de l'open lab"):
        checkin.check_in(reg, None)
    assert reg.status == "confirmed"


def test_undo_at_a_full_lab_keeps_the_place(world):
    world["lab"].capacity = world["lab"].target = 1
    reg = attendee(world, "Léa", "Martin")
    checkin.check_in(reg, None)
    checkin.undo(reg, None)
    assert reg.status == "confirmed"


def test_undo_for_someone_on_the_waiting_list_takes_no_place(world):
    world["lab"].capacity = world["lab"].target = 1
    attendee(world, "Léa", "Martin")  # the only place
    waiting = attendee(world, "Paul", "Attente", status="waitlisted")
    checkin.check_in(waiting, None)
    checkin.undo(waiting, None)
    db.session.commit()
    assert waiting.status == "waitlisted" and waitlist.taken(world["lab"].id) == 1
    assert waitlist.rank(waiting) == 1


def test_check_in_marks_present_once_and_twice_is_a_no_op(world):
    reg = attendee(world, "Léa", "Martin")
    result = checkin.check_in(reg, world["alice"])
    db.session.commit()
    assert result.changed and reg.status == "attended"
    assert reg.checked_in_at is not None and reg.checked_in_at.tzinfo is not None
    assert "présent·e à" in result.message

    again = checkin.check_in(reg, world["bob"])
    db.session.commit()
    assert not again.changed
    assert (
        again.message == f"Léa Martin : déjà enregistré·e à {format_local_time(reg.checked_in_at)}."
    )
    events = [e for e in status_events(reg) if e.to_status == "attended"]
    assert len(events) == 1 and events[0].actor_id == world["alice"].id


def test_undo_goes_back_to_confirmed_and_clears_the_time(world):
    reg = attendee(world, "Léa", "Martin")
    checkin.check_in(reg, None)
    result = checkin.undo(reg, world["alice"])
    db.session.commit()
    assert result.changed and reg.status == "confirmed" and reg.checked_in_at is None
    assert status_events(reg)[-1].from_status == "attended"
    assert not checkin.undo(reg, None).changed  # not present: nothing to undo


def test_anyone_invited_may_be_checked_in_but_not_someone_out_of_scope(world):
    invited = attendee(world, "Paul", "Invité", status="to_contact")
    assert checkin.check_in(invited, None).changed
    out = attendee(world, "Hors", "Cible", status="disqualified")
    with pytest.raises(checkin.CheckInError, match="« Hors cible »"):
        checkin.check_in(out, None)


def test_check_in_cancels_the_open_invitation_and_reminders(world):
    reg = attendee(world, "Léa", "Martin", status="to_contact")
    assert open_rows(reg, "invitation")  # register() started the invitation
    checkin.check_in(reg, None)
    db.session.commit()
    assert open_rows(reg, "invitation") == [] and open_rows(reg, "reminders") == []
    cancelled = db.session.scalars(
        sa.select(FollowUp).where(FollowUp.registration_id == reg.id)
    ).all()
    assert cancelled and all(row.reason for row in cancelled if row.status == "cancelled")


def test_search_ignores_accents_and_case_and_finds_organisations(world):
    attendee(world, "Éloïse", "Dupré", "Mairie de Lyon")
    attendee(world, "Marc", "Durand", "CAF du Rhône")
    attendee(world, "Nina", "Autre", "Pôle emploi", status="declined")
    lab = world["lab"]

    def names(query: str) -> list[str]:
        return [r.prospect.full_name for r in checkin.search(lab, query).registrations]

    assert names("eloise") == ["Éloïse Dupré"]
    assert names("DUPRE") == ["Éloïse Dupré"]
    assert names("caf rhone") == ["Marc Durand"]  # every word, in any order
    assert names("pole") == ["Nina Autre"]  # anyone registered may turn up
    assert names("") == ["Éloïse Dupré", "Marc Durand"]  # without a query: the people expected
    assert names("100%_") == []  # LIKE wildcards are plain characters


def test_search_lists_expected_people_first_and_says_when_there_are_more(world):
    attendee(world, "Zoé", "Alpha", status="to_contact")
    attendee(world, "Yann", "Beta", status="confirmed")
    attendee(world, "Xavier", "Gamma", status="disqualified")
    found = checkin.search(world["lab"], "a", limit=2)
    assert [r.prospect.last_name for r in found.registrations] == ["Beta", "Alpha"]
    assert found.more


def test_counts_present_out_of_confirmed_and_present(world):
    regs = [attendee(world, "P", f"N{i}") for i in range(3)]
    attendee(world, "Pas", "Confirmé", status="interested")
    checkin.check_in(regs[0], None)
    db.session.commit()
    assert checkin.counts(world["lab"]) == checkin.Counts(present=1, expected=3)


def test_walk_in_creates_the_prospect_from_sur_place_and_checks_them_in(world):
    data = checkin.WalkIn("Inès", "Nouvelle", "Mairie", phone="06 98 76 54 32")
    result = checkin.walk_in(world["lab"], data, world["alice"])
    db.session.commit()
    reg = result.check.registration
    assert result.prospect_created and result.check.changed
    assert reg.status == "attended" and reg.checked_in_at is not None
    assert reg.prospect.source.name == "Sur place" and reg.prospect.phone == "+33698765432"
    assert open_rows(reg, "invitation") == []
    # The second walk-in reuses the source.
    checkin.walk_in(world["lab"], checkin.WalkIn("Sans", "Contact"), None)
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Source)) == 2


def test_walk_in_with_a_known_phone_reuses_the_person(world):
    known = attendee(world, "Léa", "Martin", status="to_contact", phone=PHONE)
    before = db.session.scalar(sa.select(sa.func.count()).select_from(Prospect))
    data = checkin.WalkIn("Lea", "Martin", "Mairie", phone="06.11.22.33.44")
    result = checkin.walk_in(world["lab"], data, None)
    db.session.commit()
    assert not result.prospect_created
    assert result.check.registration.id == known.id
    assert known.status == "attended"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Prospect)) == before
    assert known.prospect.source.name == "Annuaire"  # where they came from first


@pytest.mark.parametrize(
    "phone,email,field",
    [("06 12", "", "phone"), ("", "pas-une-adresse", "email"), ("06 12", "a@b.fr", "phone")],
)
def test_walk_in_refuses_an_unreadable_contact(world, phone, email, field):
    with pytest.raises(checkin.CheckInError) as refused:
        checkin.walk_in(world["lab"], checkin.WalkIn("A", "B", phone=phone, email=email), None)
    assert refused.value.field == field and "invalide" in str(refused.value)


# --- The pages -------------------------------------------------------------------------------


@pytest.fixture
def desk(app, world, client, make_user):  # type: ignore[no-untyped-def]
    """A caller logged in at the desk (callers may check people in)."""
    user = make_user("caller", "accueil@test.fr")
    assert login(client, user.email).status_code == 302
    return client


def page_url(world) -> str:
    return f"/labs/{world['lab'].id}/accueil/"


def test_the_page_lists_expected_people_with_a_count(desk, world):
    attendee(world, "Léa", "Martin", "Mairie")
    html = desk.get(page_url(world)).get_data(as_text=True)
    assert "Léa Martin" in html and "Mairie" in html
    assert "Présent·es : 0 sur 1 attendu·es" in html
    assert 'aria-live="polite"' in html and 'role="search"' in html
    assert "Inscrire une personne sur place" in html


def test_search_by_get_and_by_fragment(desk, world):
    attendee(world, "Éloïse", "Dupré", "Mairie de Lyon")
    attendee(world, "Marc", "Durand", "CAF")
    html = desk.get(page_url(world) + "?q=eloise").get_data(as_text=True)
    assert "Éloïse Dupré" in html and "Marc Durand" not in html
    fragment = desk.get(page_url(world) + "resultats?q=lyon")
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in text
    assert "Éloïse Dupré" in text and "Marc Durand" not in text


def tap(desk, world, reg: Registration, action: str = "present", **headers):  # type: ignore[no-untyped-def]
    token = csrf_token(desk, page_url(world))
    return desk.post(
        f"{page_url(world)}{reg.id}/{action}",
        data={"csrf_token": token, "q": "mart"},
        headers=headers,
    )


def test_tap_without_javascript_redirects_with_a_message_and_twice_says_already(desk, world):
    reg = attendee(world, "Léa", "Martin")
    response = tap(desk, world, reg)
    assert response.status_code == 302 and response.headers["Location"].endswith("?q=mart")
    html = desk.get(response.headers["Location"]).get_data(as_text=True)
    assert "Léa Martin est enregistré·e présent·e à" in html
    assert "Présent·es : 1 sur 1 attendu·es" in html
    again = desk.get(tap(desk, world, reg).headers["Location"]).get_data(as_text=True)
    assert re.search(r"Léa Martin : déjà enregistré·e à \d\d:\d\d\.", again)
    db.session.expire_all()
    assert len([e for e in status_events(reg) if e.to_status == "attended"]) == 1


def test_tap_with_javascript_gets_the_fragment_and_undo_works(desk, world):
    reg = attendee(world, "Léa", "Martin")
    response = tap(desk, world, reg, **{"X-Requested-With": "fetch"})
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in text
    assert "Présent·es : 1 sur 1 attendu·es" in text and "Annuler" in text
    undone = tap(desk, world, reg, "annuler", **{"X-Requested-With": "fetch"})
    assert "Présence de Léa Martin annulée." in undone.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Registration, reg.id).status == "confirmed"


def test_a_disqualified_person_gets_a_french_message(desk, world):
    reg = attendee(world, "Hors", "Cible", status="disqualified")
    html = desk.get(page_url(world) + "?q=cible").get_data(as_text=True)
    assert "Hors cible : voir un·e responsable" in html  # no button offered
    response = tap(desk, world, reg, **{"X-Requested-With": "fetch"})
    assert response.status_code == 409
    assert "impossible de l&#39;enregistrer présent·e" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Registration, reg.id).status == "disqualified"


def test_a_person_of_another_lab_is_not_found(desk, world):
    reg = attendee(world, "Léa", "Martin")
    token = csrf_token(desk, page_url(world))
    other = f"/labs/{world['lab'].id + 1}/accueil/{reg.id}/present"
    assert desk.post(other, data={"csrf_token": token}).status_code == 404


def test_login_is_required(client, world):
    assert "/connexion" in client.get(page_url(world)).headers["Location"]
    assert "/connexion" in client.get(page_url(world) + "resultats").headers["Location"]


def test_a_post_without_csrf_token_changes_nothing(desk, world):
    reg = attendee(world, "Léa", "Martin")
    assert desk.post(f"{page_url(world)}{reg.id}/present").status_code == 400
    walk_in = desk.post(page_url(world) + "sur-place", data={"first_name": "A", "last_name": "B"})
    assert walk_in.status_code == 400
    db.session.expire_all()
    assert db.session.get(Registration, reg.id).status == "confirmed"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Prospect)) == 1


def walk_in_post(desk, world, **fields):  # type: ignore[no-untyped-def]
    url = page_url(world) + "sur-place"
    data = {"first_name": "", "last_name": "", "organisation": "", "phone": "", "email": ""}
    return desk.post(url, data={**data, **fields, "csrf_token": csrf_token(desk, url)})


def test_walk_in_page_registers_and_checks_in(desk, world):
    response = walk_in_post(
        desk, world, first_name="Inès", last_name="Nouvelle", organisation="Mairie"
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("?q=Nouvelle")
    html = desk.get(response.headers["Location"]).get_data(as_text=True)
    assert "Inscription sur place : Inès Nouvelle est enregistré·e présent·e" in html
    prospect = db.session.scalar(sa.select(Prospect).where(Prospect.last_name == "Nouvelle"))
    assert prospect.source.name == "Sur place"
    assert not (prospect.allow_sms or prospect.allow_email or prospect.allow_phone)


def test_walk_in_consents_said_aloud_are_recorded(desk, world):
    response = walk_in_post(
        desk,
        world,
        first_name="Inès",
        last_name="Nouvelle",
        phone="06 12 00 00 01",
        consent_sms="y",
        consent_phone="y",
    )
    assert response.status_code == 302
    prospect = db.session.scalar(sa.select(Prospect).where(Prospect.last_name == "Nouvelle"))
    assert (prospect.allow_sms, prospect.allow_email, prospect.allow_phone) == (True, False, True)
    methods = {c.channel: c.method for c in db.session.scalars(sa.select(Consent))}
    assert methods == {"sms": "oral", "phone": "oral"}


def test_walk_in_page_bad_phone_gives_a_french_error_and_saves_nothing(desk, world):
    response = walk_in_post(desk, world, first_name="A", last_name="B", phone="12")
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "Numéro de téléphone invalide" in html
    assert 'aria-describedby="phone-erreur"' in html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Prospect)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 0
    # Every field error at once: the missing name and the unreadable e-mail.
    both = walk_in_post(desk, world, last_name="B", email="pas-une-adresse")
    html = both.get_data(as_text=True)
    assert both.status_code == 400 and "Saisissez le prénom." in html
    assert "Adresse e-mail invalide" in html


def test_the_page_stays_small(desk, world):
    for i in range(40):
        attendee(world, "Jean-Baptiste", f"de La Fontaine {i}", "Conseil départemental")
    attendee(world, "Zélie", "Unique", "Mairie")
    html = desk.get(page_url(world)).get_data(as_text=True)
    assert html.count('class="crm-person"') == 30  # then "précisez la recherche"
    assert "précisez la recherche" in html
    assert len(html.encode()) < 32_000, len(html.encode())
    fragment = desk.get(page_url(world) + "resultats?q=zelie").get_data(as_text=True)
    assert "Zélie Unique" in fragment and len(fragment.encode()) < 2_000, len(fragment.encode())


def test_walk_in_page_for_a_known_disqualified_person_saves_nothing(desk, world):
    reg = attendee(world, "Hors", "Cible", status="disqualified", phone=PHONE)
    response = walk_in_post(
        desk,
        world,
        first_name="Hors",
        last_name="Cible",
        phone=PHONE,
        organisation="Nouvelle structure",
    )
    assert response.status_code == 400
    assert "impossible de l&#39;enregistrer" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Registration, reg.id).status == "disqualified"
    assert db.session.get(Prospect, reg.prospect_id).organisation == ""  # merge rolled back


def test_a_late_check_in_after_closing_gets_the_thank_you(world):
    reg = attendee(world, "Léa", "Martin")
    world["lab"].starts_at = utcnow() - timedelta(hours=5)
    world["lab"].ends_at = utcnow() - timedelta(hours=1)
    db.session.commit()
    lab_day.close(world["lab"], None)
    assert reg.status == "no_show"
    checkin.check_in(reg, None)
    db.session.commit()
    kinds = db.session.scalars(
        sa.select(Sequence.kind)
        .join(SequenceStep, SequenceStep.sequence_id == Sequence.id)
        .join(FollowUp, FollowUp.step_id == SequenceStep.id)
        .where(FollowUp.registration_id == reg.id, FollowUp.status == "scheduled")
    ).all()
    assert reg.status == "attended" and set(kinds) == {"thank_you"}


def test_a_late_check_in_after_closing_is_invited_to_the_next_lab(world):
    reg = attendee(world, "Léa", "Martin")
    lab = world["lab"]
    lab.starts_at, lab.ends_at = utcnow() - timedelta(hours=5), utcnow() - timedelta(hours=1)
    later = lab_afternoon(days=40)
    following = Lab(title="Suite", starts_at=later, ends_at=later + timedelta(hours=4))
    db.session.add(following)
    db.session.flush()
    lab.next_lab_id = following.id
    db.session.commit()
    lab_day.close(lab, None)
    checkin.check_in(reg, None)
    db.session.commit()
    again = db.session.scalar(
        sa.select(Registration).where(
            Registration.lab_id == following.id, Registration.prospect_id == reg.prospect_id
        )
    )
    assert again is not None and again.call_rank == lab_day.RETURNING_RANK
