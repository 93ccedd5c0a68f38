"""The lab form's overbooking margin and offer duration, and the lab page's waiting list:
people in rank order with their offers, places held by offers, and the lab-day links.

People reach the waiting list through the real services (a "yes" when the lab is full);
offers are made by waitlist.fill and sent by offer_sending.send through the outbox."""

from __future__ import annotations

import re
from datetime import date, time, timedelta

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.models import Event, Lab, PlaceOffer, Registration, Source
from crm.services import answers, lab_overview, offer_sending, waitlist
from crm.services.labs import LabError, LabInput, check_lab
from crm.services.registrations import transition
from crm.timeutil import format_local, utcnow
from tests.factories import person
from tests.integration.test_labs import lab_form, make_lab, post


def french(response) -> str:  # type: ignore[no-untyped-def]
    return response.get_data(as_text=True).replace("&#39;", "'")


# --- The form -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides,field,message",
    [
        (
            {"overbooking": "-1"},
            "overbooking",
            "La marge de surréservation ne peut pas être négative.",
        ),
        (
            {"overbooking": "41"},
            "overbooking",
            "La marge de surréservation ne peut pas dépasser la capacité du lieu (40 places).",
        ),
        ({"overbooking": ""}, "overbooking", "Saisissez la marge de surréservation"),
        ({"overbooking": "deux"}, "overbooking", "Saisissez un nombre entier de personnes"),
        ({"offer_hours": "0"}, "offer_hours", "comprise entre 1 et 168 heures"),
        ({"offer_hours": "200"}, "offer_hours", "comprise entre 1 et 168 heures"),
        ({"offer_hours": ""}, "offer_hours", "Saisissez la durée de réservation"),
        ({"offer_hours": "1,5"}, "offer_hours", "Saisissez un nombre entier d'heures."),
    ],
)
def test_bad_margin_or_offer_duration_gets_a_french_message_and_saves_nothing(
    app, manager_client, overrides, field, message
):
    response = post(manager_client, "/labs/nouveau", lab_form(**overrides))
    html = french(response)
    assert response.status_code == 400
    assert message in html
    assert f'aria-describedby="{field}-erreur"' in html
    assert f'id="{field}-erreur" class="fr-error-text"' in html
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Lab)) == 0


def test_a_refused_edit_leaves_the_lab_as_it_was(app, manager_client):
    lab_id = make_lab(app, overbooking=2, offer_hours=48)
    response = post(
        manager_client, f"/labs/{lab_id}/modifier", lab_form(overbooking="-3", offer_hours="200")
    )
    html = french(response)
    assert response.status_code == 400
    assert "ne peut pas être négative" in html and "entre 1 et 168 heures" in html
    with app.app_context():
        lab = db.session.get(Lab, lab_id)
        assert (lab.overbooking, lab.offer_hours, lab.title) == (2, 48, "Lab")
        assert db.session.scalar(sa.select(Event.id).where(Event.kind == "lab.updated")) is None


def test_the_service_refuses_the_same_values_without_http(app_ctx):
    base = LabInput(title="Lab", day=date(2026, 3, 3), start=time(9), end=time(13))
    for bad in ({"overbooking": -1}, {"overbooking": 41}, {"offer_hours": 0}, {"offer_hours": 169}):
        with pytest.raises(LabError) as info:
            check_lab(LabInput(**{**base.__dict__, **bad}))
        assert info.value.field == next(iter(bad))
    check_lab(LabInput(**{**base.__dict__, "overbooking": 40, "offer_hours": 168}))


def test_the_form_defaults_and_explains_both_fields(manager_client):
    html = french(manager_client.get("/labs/nouveau"))
    assert re.search(r'<input[^>]*name="overbooking"[^>]*value="0"', html)
    assert re.search(r'<input[^>]*name="offer_hours"[^>]*value="24"', html)
    assert "Marge de surréservation" in html and "ne vient pas le jour J" in html
    assert "Durée de réservation d'une place proposée (heures)" in html
    assert "Au lab précédent" not in html  # a new lab has no previous lab


def test_manager_saves_the_margin_and_the_offer_duration(app, manager_client):
    response = post(manager_client, "/labs/nouveau", lab_form(overbooking="3", offer_hours="48"))
    assert response.status_code == 302
    with app.app_context():
        lab = db.session.scalar(sa.select(Lab))
        assert (lab.overbooking, lab.offer_hours) == (3, 48)
        lab_id = lab.id
    form = manager_client.get(f"/labs/{lab_id}/modifier").get_data(as_text=True)
    assert re.search(r'<input[^>]*name="overbooking"[^>]*value="3"', form)
    assert re.search(r'<input[^>]*name="offer_hours"[^>]*value="48"', form)

    response = post(
        manager_client, f"/labs/{lab_id}/modifier", lab_form(overbooking="0", offer_hours="12")
    )
    assert response.status_code == 302
    with app.app_context():
        lab = db.session.get(Lab, lab_id)
        assert (lab.overbooking, lab.offer_hours) == (0, 12)
        event = db.session.scalar(sa.select(Event).where(Event.kind == "lab.updated"))
        assert set(event.data["changed"]) == {"overbooking", "offer_hours"}
    page = french(manager_client.get(f"/labs/{lab_id}"))
    assert "40 places, objectif 30" in page  # no margin: nothing said about it
    assert "reste réservée 12 heures" in page


# --- The no-show rate of the previous lab ---------------------------------------------------


def _seen_on_the_day(app, lab_id: int, attended: int, no_show: int) -> None:  # type: ignore[no-untyped-def]
    with app.app_context():
        world = {"source": Source(name=f"Source {lab_id}"), "lab": db.session.get(Lab, lab_id)}
        for outcome in ["attended"] * attended + ["no_show"] * no_show:
            registration = person(world, "confirmed")
            transition(registration, outcome, None)
        db.session.commit()


def test_the_form_shows_the_no_show_rate_of_the_previous_lab(app, manager_client):
    lab_id = make_lab(app, "Deuxième", day=date.today() + timedelta(days=30))
    first = make_lab(app, "Premier", day=date(2026, 3, 3), next_lab_id=lab_id)
    _seen_on_the_day(app, first, attended=9, no_show=2)
    html = french(manager_client.get(f"/labs/{lab_id}/modifier"))
    # 2 of 11 confirmed people checked on the day did not come: 18 %.
    assert "Au lab précédent, 18 % des confirmés ne sont pas venus (2 sur 11" in html
    assert "« Premier » du 3 mars 2026" in html
    # 40 places at 18 %: 9 people more (49 confirmed, about 9 absent).
    assert "Pour 40 places, une marge de 9 compenserait un taux semblable." in html
    with app.app_context():
        rate = lab_overview.previous_no_show_rate(db.session.get(Lab, lab_id))
        assert (rate.no_show, rate.seen, rate.percent) == (2, 11, 18)


def test_no_hint_without_a_past_lab_with_people_marked(app, manager_client):
    lab_id = make_lab(app, "Deuxième", day=date.today() + timedelta(days=30))
    make_lab(app, "Premier sans pointage", day=date(2026, 3, 3), next_lab_id=lab_id)
    html = french(manager_client.get(f"/labs/{lab_id}/modifier"))
    assert "Marge de surréservation" in html and "Au lab précédent" not in html


# --- The lab page ---------------------------------------------------------------------------


@pytest.fixture
def full_lab(world):
    """The world's lab with 2 places, both taken, and three people waiting (ranks 1 to 3)."""
    lab = world["lab"]
    lab.capacity, lab.target = 2, 2
    db.session.commit()
    seated = [yes(world, f"Assise{i}") for i in range(2)]
    waiting = [yes(world, name) for name in ("Zoé", "Adam", "Marc")]  # not in name order
    assert [r.status for r in waiting] == ["waitlisted"] * 3
    return {**world, "seated": seated, "waiting": waiting}


def yes(world, first_name: str) -> Registration:  # type: ignore[no-untyped-def]
    registration = person(
        world, "interested", first_name=first_name, last_name="Test", allow_sms=True
    )
    answers.confirm(registration, "link")
    db.session.commit()
    return registration


def send_offers(lab: Lab) -> list[PlaceOffer]:
    waitlist.fill(lab, utcnow())
    db.session.commit()
    offers = db.session.scalars(sa.select(PlaceOffer).where(PlaceOffer.status == "scheduled"))
    ids = [offer.id for offer in offers]
    for offer_id in ids:
        assert offer_sending.send(offer_id) == "sent"
    return [db.session.get(PlaceOffer, i) for i in ids]


def positions(html: str, names: list[str]) -> list[int]:
    return [html.index(name) for name in names]


def test_the_waiting_list_is_shown_in_rank_order_with_offers(
    full_lab, manager_client, open_window, fast_pace
):
    lab = full_lab["lab"]
    zoe, adam, marc = full_lab["waiting"]
    answers.decline(full_lab["seated"][0], "sms")
    db.session.commit()
    (offer,) = send_offers(lab)
    assert offer.registration_id == zoe.id

    html = french(manager_client.get(f"/labs/{lab.id}"))
    section = html[html.index('id="liste-attente"') :]
    assert "<caption>Personnes en liste d'attente, par rang (3)</caption>" in section
    table = section[: section.index("</table>")]
    assert positions(table, ["Zoé Test", "Adam Test", "Marc Test"]) == sorted(
        positions(table, ["Zoé Test", "Adam Test", "Marc Test"])
    )
    rows = table.split("<tr>")[2:]
    assert "<td>1</td>" in rows[0] and "Zoé Test" in rows[0] and "1 sur 3" in rows[0]
    assert f'href="/prospects/{zoe.prospect_id}"' in rows[0]
    assert format_local(zoe.waitlisted_at) in rows[0]
    assert "En attente de réponse" in rows[0]
    assert f"Place réservée jusqu'au {format_local(offer.expires_at, with_day=True)}" in rows[0]
    assert "<td>2</td>" in rows[1] and "Adam Test" in rows[1] and "0 sur 3" in rows[1]
    assert f'href="/prospects/{adam.prospect_id}"' in rows[1]
    assert "<td>3</td>" in rows[2] and f'href="/prospects/{marc.prospect_id}"' in rows[2]
    # The offer holds the freed place: 1 confirmed + 1 offer = 2 places out of 2.
    assert "2 places occupées sur 2 (100 %), dont 1 réservée par une proposition" in html
    assert "<caption>Dernières places proposées</caption>" in section
    assert "Proposition envoyée par SMS." in section


def test_an_expired_offer_moves_to_the_next_person_and_the_page_says_so(
    full_lab, manager_client, open_window, fast_pace
):
    lab = full_lab["lab"]
    adam = full_lab["waiting"][1]
    answers.decline(full_lab["seated"][0], "sms")
    db.session.commit()
    (first,) = send_offers(lab)
    waitlist.tick(first.expires_at + timedelta(minutes=1))
    (second,) = db.session.scalars(sa.select(PlaceOffer).where(PlaceOffer.status == "scheduled"))
    assert second.registration_id == adam.id

    html = french(manager_client.get(f"/labs/{lab.id}"))
    table = html[html.index("Personnes en liste d'attente") :]
    rows = table[: table.index("</table>")].split("<tr>")[2:]
    assert "Zoé Test" in rows[0] and "Aucune : dernière expirée" in rows[0]
    assert "Adam Test" in rows[1] and "Prête à partir" in rows[1]
    assert "Envoi de la proposition au prochain créneau d'envoi" in rows[1]
    offers = html[html.index("Dernières places proposées") :]
    assert offers.index("Adam Test") < offers.index("Zoé Test")  # newest first
    assert "Expirée" in offers and "Pas de réponse dans le délai" in offers


def test_the_margin_is_shown_with_the_places(world, manager_client):
    world["lab"].capacity, world["lab"].overbooking, world["lab"].offer_hours = 20, 3, 1
    db.session.commit()
    html = french(manager_client.get(f"/labs/{world['lab'].id}"))
    assert "20 places (+ 3 de surréservation), objectif 30 participants" in html
    assert "20 places + 3 de surréservation" in html
    assert "0 place occupée sur 23 (0 %)" in html and "23 places libres." in html
    assert "reste réservée 1 heure " in html


def test_no_waiting_list_section_when_nobody_waits(world, manager_client):
    html = french(manager_client.get(f"/labs/{world['lab'].id}"))
    assert 'id="liste-attente"' not in html and "Dernières places proposées" not in html


def test_managers_get_check_in_and_groups_links(world, manager_client):
    lab_id = world["lab"].id
    html = french(manager_client.get(f"/labs/{lab_id}"))
    assert f'href="/labs/{lab_id}/accueil/">Accueil du jour (émargement)</a>' in html
    assert f'href="/labs/{lab_id}/groupes/">Groupes d\'atelier</a>' in html


def test_callers_get_the_check_in_link_and_the_waiting_list_but_not_groups(full_lab, caller_client):
    lab_id = full_lab["lab"].id
    html = french(caller_client.get(f"/labs/{lab_id}"))
    assert f'href="/labs/{lab_id}/accueil/">Accueil du jour (émargement)</a>' in html
    assert "/groupes/" not in html and "Groupes d'atelier" not in html
    assert "Personnes en liste d'attente, par rang (3)" in html
