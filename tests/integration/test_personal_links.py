"""The personal link (/r/<token>) through the real app: the page changes nothing, the three
buttons (CSRF on), repeated answers, tampered / expired / used links, the RFC 8058 one-click
e-mail unsubscribe, the calendar file, and the token's length in an SMS."""

from __future__ import annotations

import html as html_lib
import re
from datetime import datetime, time, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask
from icalendar import Calendar
from itsdangerous import URLSafeSerializer

from crm.extensions import db
from crm.messaging.encoding import sms_info
from crm.models import Consent, Event, FollowUp, Registration, Sequence, SequenceStep
from crm.services import answers, personal_links, registrations, sequences
from crm.services.registrations import TransitionError
from crm.timeutil import from_local, utcnow
from tests.conftest import csrf_token
from tests.factories import person

VENUE = "20 avenue de Ségur, 75007 Paris"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def reg(world) -> Registration:
    lab = world["lab"]
    lab.title = "Simplifier la déclaration"
    lab.venue = VENUE
    # 09:30 to 13:30 in Paris, 20 days from now (summer or winter time alike).
    day = (utcnow() + timedelta(days=20)).date()
    lab.starts_at = from_local(datetime.combine(day, time(9, 30)))
    lab.ends_at = from_local(datetime.combine(day, time(13, 30)))
    registration = person(
        world, first_name="Léa", email="lea@example.fr", allow_sms=True, allow_email=True
    )
    return registration


def text(response) -> str:  # type: ignore[no-untyped-def]
    """The page's text as a person reads it (Jinja escapes the apostrophes)."""
    return html_lib.unescape(response.get_data(as_text=True))


def path_of(registration: Registration) -> str:
    return urlsplit(sequences.personal_link(registration.id)).path


def token_of(registration: Registration) -> str:
    return path_of(registration).rsplit("/", 1)[1]


def snapshot(registration: Registration) -> tuple:
    """Everything an answer could change, to prove that something changed nothing."""
    db.session.expire_all()
    prospect = registration.prospect
    followups = db.session.execute(
        sa.select(FollowUp.id, FollowUp.status).order_by(FollowUp.id)
    ).all()
    return (
        registration.status,
        registration.version,
        (prospect.allow_sms, prospect.allow_email, prospect.allow_phone),
        db.session.scalar(sa.select(sa.func.count(Event.id))),
        db.session.scalar(sa.select(sa.func.count(Consent.id))),
        tuple(followups),
    )


def kind_rows(registration: Registration, kind: str) -> list[FollowUp]:
    return list(
        db.session.scalars(
            sa.select(FollowUp)
            .join(SequenceStep, SequenceStep.id == FollowUp.step_id)
            .join(Sequence, Sequence.id == SequenceStep.sequence_id)
            .where(FollowUp.registration_id == registration.id, Sequence.kind == kind)
        )
    )


def press(client, registration: Registration, action: str, follow: bool = True):
    """Open the page (anonymous session, CSRF token), then press a button."""
    path = path_of(registration)
    token = csrf_token(client, path)
    return client.post(f"{path}/{action}", data={"csrf_token": token}, follow_redirects=follow)


# --- the page -----------------------------------------------------------------------------------


def test_link_from_the_messages_resolves_and_shows_the_lab(client, reg):
    state = personal_links.registration_for(token_of(reg))
    assert state.valid and state.registration is not None and state.registration.id == reg.id
    before = snapshot(reg)

    response = client.get(path_of(reg))
    html = text(response)
    assert response.status_code == 200
    assert "Simplifier la déclaration" in html
    assert re.search(r"(lun|mar|mercre|jeu|vendre|same)di \d+ \w+ \d{4}, de 09:30 à 13:30", html)
    assert "Demi-journée, atelier en petits groupes" in html
    assert VENUE in html
    assert (
        "https://www.openstreetmap.org/search?query=20+avenue+de+S%C3%A9gur%2C+75007+Paris" in html
    )
    for button in ("Je confirme ma présence", "Je ne pourrai pas venir", "Ne plus me contacter"):
        assert button in html
    assert html.count('name="csrf_token"') == 3
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "noindex" in response.headers["X-Robots-Tag"]
    assert f'href="{path_of(reg)}/lab.ics"' in html
    assert snapshot(reg) == before


def test_get_never_changes_anything(client, reg):
    before = snapshot(reg)
    path = path_of(reg)
    assert client.get(path).status_code == 200
    assert client.head(path).status_code == 200
    assert client.get(f"{path}/lab.ics").status_code == 200
    for action in ("confirmer", "decliner", "ne-plus-contacter"):
        assert client.get(f"{path}/{action}").status_code == 405
        assert client.get(f"{path}/{action}?csrf_token=x").status_code == 405
    assert snapshot(reg) == before


# --- the three buttons --------------------------------------------------------------------------


def test_confirm_stops_the_invitation_and_schedules_the_reminders(client, reg):
    assert {row.status for row in kind_rows(reg, "invitation")} == {"scheduled"}
    response = press(client, reg, "confirmer", follow=False)
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == path_of(reg)

    page = text(client.get(path_of(reg)))
    assert "Merci ! Votre présence est confirmée." in page
    assert "Vous avez confirmé votre présence." in page
    db.session.expire_all()
    assert reg.status == "confirmed"
    assert {row.status for row in kind_rows(reg, "invitation")} == {"cancelled"}
    reminders = kind_rows(reg, "reminders")
    # Three rows; the morning one (08:30, moved into the 10:00 send window) is skipped since
    # the lab starts at 09:30; the week-before e-mail is always scheduled.
    assert len(reminders) == 3 and "scheduled" in {row.status for row in reminders}
    event = db.session.scalar(
        sa.select(Event).where(Event.kind == "registration.status", Event.to_status == "confirmed")
    )
    assert event.reason == "lien personnel" and event.actor_id is None

    before = snapshot(reg)
    again = text(press(client, reg, "confirmer"))
    assert "Votre présence est déjà confirmée." in again
    assert snapshot(reg) == before


def test_decline(client, reg):
    page = text(press(client, reg, "decliner"))
    assert "C'est noté : vous ne pourrez pas venir." in page
    db.session.expire_all()
    assert reg.status == "declined"
    assert {row.status for row in kind_rows(reg, "invitation")} == {"cancelled"}
    before = snapshot(reg)
    again = text(press(client, reg, "decliner"))
    assert "déjà indiqué que vous ne pourrez pas venir" in again
    assert snapshot(reg) == before


def test_confirm_after_declining_changes_the_answer(client, reg):
    press(client, reg, "decliner")
    page = text(press(client, reg, "confirmer"))
    assert "Votre présence est confirmée" in page
    db.session.expire_all()
    assert reg.status == "confirmed"


def test_stop_withdraws_every_channel(client, reg):
    page = text(press(client, reg, "ne-plus-contacter"))
    assert "nous ne vous contacterons plus" in page
    db.session.expire_all()
    prospect = reg.prospect
    assert (prospect.allow_sms, prospect.allow_email, prospect.allow_phone) == (False,) * 3
    consents = db.session.scalars(sa.select(Consent).order_by(Consent.channel)).all()
    assert [c.channel for c in consents] == ["email", "phone", "sms"]
    assert all(
        c.method == "signed_link"
        and c.from_person
        and not c.granted
        and c.basis == "lien personnel"
        for c in consents
    )
    assert {row.status for row in kind_rows(reg, "invitation")} == {"cancelled"}
    assert reg.status == "to_contact"  # stopping messages is not an answer to the lab

    before = snapshot(reg)
    again = text(press(client, reg, "ne-plus-contacter"))
    assert "déjà plus de messages" in again
    assert "Ne plus me contacter</button>" not in again
    assert snapshot(reg) == before


def test_an_answer_without_csrf_token_is_refused(client, reg):
    before = snapshot(reg)
    client.get(path_of(reg))  # a session exists, but the form's token is missing
    for action in ("confirmer", "decliner", "ne-plus-contacter"):
        response = client.post(f"{path_of(reg)}/{action}")
        assert response.status_code == 400
        assert "Votre réponse n'a pas été enregistrée" in text(response)
        bad = client.post(f"{path_of(reg)}/{action}", data={"csrf_token": "faux"})
        assert bad.status_code == 400
    assert snapshot(reg) == before


def test_a_refused_transition_changes_nothing_and_points_to_the_team(client, reg, monkeypatch):
    def racing_confirm(registration, via):  # type: ignore[no-untyped-def]
        # Something changes, then the status machine refuses: everything is rolled back.
        registrations.transition(registration, "declined", None, "course")
        raise TransitionError("Impossible de passer de « A décliné » à « Confirmé ».")

    before = snapshot(reg)
    monkeypatch.setattr(answers, "confirm", racing_confirm)
    response = press(client, reg, "confirmer")
    html = text(response)
    assert response.status_code == 409
    assert "Rien n'a été modifié" in html and "Contactez l'équipe Open Lab" in html
    assert "Impossible de passer" not in html
    assert snapshot(reg) == before


# --- links that cannot be answered --------------------------------------------------------------


def _tampered(token: str) -> list[str]:
    payload, signature = token.split(".")
    flip = {"A": "B"}.get(signature[5], "A")
    other = URLSafeSerializer("another-key", salt=sequences.LINK_SALT).dumps(1)
    return [
        f"{payload}.{signature[:5]}{flip}{signature[6:]}",  # one character of the signature
        f"{'Mg' if payload != 'Mg' else 'Mw'}.{signature}",  # another registration id
        token[:-1],
        "abc",
        "....",
        "%C3%A9t%C3%A9",
        other,
    ]


def test_a_tampered_token_is_a_404_page_and_changes_nothing(client, reg):
    before = snapshot(reg)
    token = token_of(reg)
    for bad in _tampered(token):
        page = client.get(f"/r/{bad}")
        assert page.status_code == 404, bad
        assert "Ce lien n'est pas valide" in text(page)
        assert client.get(f"/r/{bad}/lab.ics").status_code == 404
        form_token = csrf_token(client, path_of(reg))
        for action in ("confirmer", "decliner", "ne-plus-contacter"):
            response = client.post(f"/r/{bad}/{action}", data={"csrf_token": form_token})
            assert response.status_code == 404
        assert client.post(f"/r/{bad}", data=ONE_CLICK).status_code == 404
    assert snapshot(reg) == before


def test_signed_but_impossible_ids_are_invalid(app_ctx, reg):
    serializer = URLSafeSerializer(app_ctx.config["SECRET_KEY"], salt=sequences.LINK_SALT)
    for payload in (2**70, -1, 0, True, "1", [1], None, reg.id + 1000):
        assert personal_links.registration_for(serializer.dumps(payload)).status == "invalid"


def test_a_link_for_a_lab_that_ended_is_a_410_page(client, world, reg):
    lab = world["lab"]
    lab.starts_at = utcnow() - timedelta(days=1, hours=4)
    lab.ends_at = utcnow() - timedelta(days=1)
    db.session.commit()
    before = snapshot(reg)
    page = client.get(path_of(reg))
    assert page.status_code == 410
    assert "Ce lien a expiré" in text(page)
    assert client.get(f"{path_of(reg)}/lab.ics").status_code == 410
    for action in ("confirmer", "decliner"):
        assert press(client, reg, action).status_code == 410
    assert snapshot(reg) == before


def test_a_cancelled_registration_is_a_410_page(client, world, reg):
    registrations.change_status(reg, "cancelled", None, "lab annulé pour cette personne")
    db.session.commit()
    before = snapshot(reg)
    page = client.get(path_of(reg))
    assert page.status_code == 410
    html = text(page)
    assert "Cette invitation est close" in html and "Rien n'a été modifié" in html
    assert "Je confirme ma présence" not in html
    for action in ("confirmer", "decliner"):
        assert press(client, reg, action).status_code == 410
    assert snapshot(reg) == before


def test_stopping_messages_still_works_after_the_lab(client, world, reg):
    # The thank-you e-mail goes out after the lab with this link as its way to stop.
    registrations.change_status(reg, "confirmed", None)
    registrations.change_status(reg, "attended", None)
    world["lab"].starts_at = utcnow() - timedelta(days=1, hours=4)
    world["lab"].ends_at = utcnow() - timedelta(days=1)
    db.session.commit()
    assert "Ne plus me contacter</button>" in text(client.get(path_of(reg)))
    page = press(client, reg, "ne-plus-contacter")
    assert page.status_code == 410  # back on the closed page, with the message
    assert "nous ne vous contacterons plus" in text(page)
    db.session.expire_all()
    assert not reg.prospect.allow_sms and not reg.prospect.allow_email
    assert reg.status == "attended"


# --- one-click e-mail unsubscribe (RFC 8058) ----------------------------------------------------


def test_one_click_unsubscribe_withdraws_email_only(app: Flask, reg):
    mail_provider = app.test_client()  # no session, no CSRF token: as a mail provider posts
    response = mail_provider.post(path_of(reg), data=ONE_CLICK)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "Désinscription enregistrée" in text(response)
    db.session.expire_all()
    assert not reg.prospect.allow_email
    assert reg.prospect.allow_sms and reg.prospect.allow_phone
    consent = db.session.scalar(sa.select(Consent))
    assert (consent.channel, consent.granted, consent.method, consent.from_person) == (
        "email",
        False,
        "signed_link",
        True,
    )
    assert reg.status == "to_contact"
    # The invitation continues by SMS: one-click only leaves the e-mail list.
    assert "scheduled" in {row.status for row in kind_rows(reg, "invitation")}

    before = snapshot(reg)
    again = mail_provider.post(path_of(reg), data=ONE_CLICK, content_type="multipart/form-data")
    assert again.status_code == 200 and "déjà" in text(again)
    assert snapshot(reg) == before


def test_a_post_to_the_link_without_the_one_click_body_is_400(app: Flask, reg):
    before = snapshot(reg)
    poster = app.test_client()
    for data in ({}, {"List-Unsubscribe": "one-click"}, {"action": "stop"}, {"csrf_token": "x"}):
        assert poster.post(path_of(reg), data=data).status_code == 400
    assert poster.post(path_of(reg), data="List-Unsubscribe=One-Click").status_code == 400
    assert snapshot(reg) == before


def test_one_click_unsubscribe_after_the_lab(app: Flask, world, reg):
    world["lab"].starts_at = utcnow() - timedelta(days=1, hours=4)
    world["lab"].ends_at = utcnow() - timedelta(days=1)
    db.session.commit()
    assert app.test_client().post(path_of(reg), data=ONE_CLICK).status_code == 200
    db.session.expire_all()
    assert not reg.prospect.allow_email


# --- calendar -----------------------------------------------------------------------------------


def test_the_calendar_file_parses_back_with_the_lab(client, world, reg):
    before = snapshot(reg)
    response = client.get(f"{path_of(reg)}/lab.ics")
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.get_data()
    assert b"DTSTART:" in body and b"Z\r\n" in body  # UTC, not a floating time

    events = Calendar.from_ical(body).walk("VEVENT")
    assert len(events) == 1
    event = events[0]
    lab = world["lab"]
    assert event.decoded("dtstart") == lab.starts_at
    assert event.decoded("dtend") == lab.ends_at
    assert event.decoded("dtstart").astimezone(ZoneInfo("Europe/Paris")).hour == 9
    assert str(event["location"]) == VENUE
    assert str(event["summary"]) == "Open lab : Simplifier la déclaration"
    assert sequences.personal_link(reg.id) in str(event["description"])
    again = Calendar.from_ical(client.get(f"{path_of(reg)}/lab.ics").get_data())
    assert str(again.walk("VEVENT")[0]["uid"]) == str(event["uid"])
    assert str(event["uid"]).startswith(f"registration-{reg.id}@")
    assert snapshot(reg) == before


# --- length in an SMS ---------------------------------------------------------------------------


def test_the_link_keeps_the_default_invitation_in_two_segments(app_ctx, monkeypatch):
    monkeypatch.setitem(app_ctx.config, "PUBLIC_BASE_URL", "https://openlab.example.gouv.fr")
    link = sequences.personal_link(99_999)
    assert len(link) <= 69
    assert len(sequences.personal_link(9_999_999)) <= 72
    fields = {
        "prenom": "Dominique",
        "nom": "",
        "lab": "Simplifier la déclaration de revenus",
        "date": "mercredi 30 septembre 2026 à 09:30",
        "heure": "09:30",
        "lieu": VENUE,
        "lien": link,
    }
    body = sequences.DEFAULTS["invitation"][1][0].body
    info = sms_info(sequences.render(body, fields))
    assert info.encoding == "GSM-7" and info.segments == 2
