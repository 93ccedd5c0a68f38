"""A manager's follow-up page per lab: lists by state, pause/resume, the lab's send window and
the review of doubtful sends, through the real pages, dispatcher and send job."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.models import Event, FollowUp, Lab, Message, Sequence, SequenceStep
from crm.services import dispatcher, sending
from crm.services.window import next_opening, parse_window, send_window
from crm.timeutil import local_zone, utcnow
from tests.conftest import login
from tests.factories import person


@pytest.fixture
def manager(app, world):
    from crm.services.accounts import create_user

    create_user("cheffe@test.fr", "x" * 12, "manager", "Camille Cheffe")
    client = app.test_client()
    assert login(client, "cheffe@test.fr", "x" * 12).status_code == 302
    return client


def token(html: str) -> str:
    match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html)
    assert match
    return match.group(1)


def page(client, lab: Lab, **args) -> str:
    query = "&".join(f"{k}={v}" for k, v in args.items())
    response = client.get(f"/labs/{lab.id}/relances/?{query}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def post(client, lab: Lab, path: str, **data):
    data["csrf_token"] = token(page(client, lab))
    return client.post(f"/labs/{lab.id}/relances/{path}", data=data)


def first_sms(registration) -> FollowUp:
    return db.session.scalar(
        sa.select(FollowUp)
        .join(SequenceStep, SequenceStep.id == FollowUp.step_id)
        .join(Sequence, Sequence.id == SequenceStep.sequence_id)
        .where(
            FollowUp.registration_id == registration.id,
            Sequence.kind == "invitation",
            SequenceStep.channel == "sms",
        )
        .order_by(SequenceStep.position)
    )


def other_lab() -> Lab:
    now = utcnow()
    lab = Lab(
        title="Autre lab",
        starts_at=now + timedelta(days=30),
        ends_at=now + timedelta(days=30, hours=4),
        status="recruiting",
    )
    db.session.add(lab)
    db.session.commit()
    return lab


def reachable(world, **fields):
    return person(world, allow_sms=True, allow_email=True, **fields)


def due(row: FollowUp, status: str = "scheduled") -> FollowUp:
    row.status, row.due_at = status, utcnow() - timedelta(minutes=5)
    db.session.commit()
    return row


# --- pause and resume ------------------------------------------------------------------------


def test_pause_holds_the_lab_rows_and_resume_releases_them(manager, world):
    lab = world["lab"]
    held = due(first_sms(reachable(world, first_name="Retenue")))
    elsewhere_world = {**world, "lab": other_lab()}
    free = due(first_sms(reachable(elsewhere_world, first_name="Libre")))

    response = post(manager, lab, "pause")
    assert response.status_code == 302
    db.session.refresh(lab)
    assert lab.sending_paused
    assert "Envois suspendus" in page(manager, lab)
    assert dispatcher.claim_due(utcnow(), 100) == [free.id]
    db.session.refresh(held)
    assert held.status == "scheduled"

    response = post(manager, lab, "reprise")
    assert response.status_code == 302
    flashed = page(manager, lab)
    assert "Envois repris. 1 message en retard" in flashed
    db.session.refresh(lab)
    assert not lab.sending_paused
    assert dispatcher.claim_due(utcnow(), 100) == [held.id]
    kinds = db.session.scalars(
        sa.select(Event.kind).where(Event.lab_id == lab.id, Event.kind.like("lab.sending%"))
    )
    assert list(kinds) == ["lab.sending_paused", "lab.sending_resumed"]


def test_a_row_claimed_just_before_the_pause_goes_back_to_the_schedule(app, world):
    lab = world["lab"]
    row = due(first_sms(reachable(world)), status="queued")
    lab.sending_paused = True
    db.session.commit()
    assert sending.send(row.id) == "scheduled"
    db.session.refresh(row)
    assert row.reason == sending.PAUSED_REASON
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


def test_a_caller_cannot_see_or_change_the_sending(app, world):
    client = app.test_client()
    assert login(client, "alice@test.fr", "x" * 12).status_code == 302
    lab = world["lab"]
    assert client.get(f"/labs/{lab.id}/relances/").status_code == 403
    html = client.get("/").get_data(as_text=True)
    response = client.post(f"/labs/{lab.id}/relances/pause", data={"csrf_token": token(html)})
    assert response.status_code == 403
    db.session.refresh(lab)
    assert not lab.sending_paused


def test_an_unknown_lab_is_a_404(manager, world):
    assert manager.get("/labs/999999/relances/").status_code == 404


# --- the lab's send window -------------------------------------------------------------------


def _closed_config_hours(app, monkeypatch) -> None:
    """A configured window that is closed now (a one-hour slot twelve hours away), holidays
    ignored, so that only the lab's own window can let a message out."""
    hour = (datetime.now(local_zone()).hour + 12) % 24
    monkeypatch.setitem(app.config, "SEND_DAYS", "1-7")
    monkeypatch.setitem(app.config, "SEND_HOURS", f"{hour:02d}:00-{hour:02d}:59")
    monkeypatch.setattr("crm.services.window.is_holiday", lambda day: False)


def test_the_lab_window_is_the_one_checked_at_send_time(app, world, monkeypatch):
    _closed_config_hours(app, monkeypatch)
    lab = world["lab"]
    row = due(first_sms(reachable(world)), status="queued")
    assert sending.send(row.id) == "scheduled"  # outside the configured window: moved
    db.session.refresh(row)
    assert row.due_at > utcnow()

    lab.send_days, lab.send_hours = "1-7", "00:00-23:59:59"
    due(row, status="queued")
    assert sending.send(row.id) == "sent"
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 1


def _next_saturday_at(hour: int) -> datetime:
    today = datetime.now(local_zone()).date()
    saturday = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    return datetime.combine(saturday, time(hour), tzinfo=local_zone())


def test_saving_a_window_moves_the_scheduled_rows_now_outside_it(manager, world):
    lab = world["lab"]
    lab.send_days, lab.send_hours = "1-7", "10:00-20:00"
    saturday = _next_saturday_at(11)
    row = first_sms(reachable(world))
    row.due_at = saturday
    sent = first_sms(reachable(world))
    sent.status, sent.due_at, sent.sent_at = "sent", saturday, utcnow()
    db.session.commit()

    response = post(
        manager, lab, "fenetre", first_day="1", last_day="5", start="10:00", end="20:00"
    )
    assert response.status_code == 302
    db.session.refresh(lab)
    assert (lab.send_days, lab.send_hours) == ("1-5", "10:00-20:00")
    db.session.refresh(row)
    db.session.refresh(sent)
    expected = next_opening(saturday, parse_window("1-5", "10:00-20:00"))
    assert row.due_at == expected and expected.astimezone(local_zone()).weekday() < 5
    assert sent.due_at == saturday  # history is not rewritten
    html = page(manager, lab)
    assert "du lundi au vendredi, de 10:00 à 20:00" in html
    assert "1 message programmé décalé" in html
    event = db.session.scalar(sa.select(Event).where(Event.kind == "lab.send_window"))
    assert event.data["moved"] == 1


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"first_day": "5", "last_day": "1"}, "doit venir après le premier"),
        ({"start": "20:00", "end": "10:00"}, "L&#39;heure de fin doit être après"),
        ({"start": "10:00", "end": "10:30"}, "au moins une heure"),
        ({"start": "25:00"}, "Saisissez une heure valide"),
        ({"start": ""}, "Saisissez l&#39;heure de début"),
        ({"first_day": "9"}, "Choisissez un jour dans la liste"),
    ],
)
def test_a_bad_window_is_refused_in_french_and_changes_nothing(manager, world, values, message):
    lab = world["lab"]
    row = first_sms(reachable(world))
    before = row.due_at
    data = {"first_day": "1", "last_day": "5", "start": "10:00", "end": "20:00", **values}
    response = post(manager, lab, "fenetre", **data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    db.session.refresh(lab)
    db.session.refresh(row)
    assert (lab.send_days, lab.send_hours) == (None, None)
    assert row.due_at == before


def test_back_to_the_default_window(manager, world, app):
    lab = world["lab"]
    lab.send_days, lab.send_hours = "1-7", "08:00-21:00"
    db.session.commit()
    assert "fenêtre propre à cet open lab" in page(manager, lab)
    assert post(manager, lab, "fenetre/defaut").status_code == 302
    db.session.refresh(lab)
    assert (lab.send_days, lab.send_hours) == (None, None)
    assert send_window(lab) == send_window()


# --- lists and review ------------------------------------------------------------------------


def test_each_tab_lists_its_rows_with_the_reason(manager, world):
    lab = world["lab"]
    failed = first_sms(reachable(world, first_name="Échouée"))
    failed.status, failed.reason = "failed", "Numéro invalide (21211)."
    skipped = first_sms(reachable(world, first_name="Sautée"))
    skipped.status, skipped.reason = "skipped", "Plafond atteint : 4 messages automatiques."
    reachable(world, first_name="Programmée")
    db.session.commit()

    scheduled = page(manager, lab)
    assert "Programmée" in scheduled and "Numéro invalide" not in scheduled
    assert "Programmés (10)" in scheduled  # 3 people × 4 steps, minus the 2 ended rows
    failures = page(manager, lab, onglet="echecs")
    assert "Échouée" in failures and "Numéro invalide (21211)." in failures
    assert "Sautée" not in failures
    assert "Plafond atteint" in page(manager, lab, onglet="non-envoyes")
    lab_page = manager.get(f"/labs/{lab.id}").get_data(as_text=True)
    assert "10 programmés, 0 envoyé, 1 en échec" in lab_page


def test_a_doubtful_send_is_reviewed_once_and_never_resent(manager, world):
    lab = world["lab"]
    row = first_sms(reachable(world, first_name="Douteuse"))
    row.status, row.reason = "unknown", "Envoi interrompu : à vérifier."
    db.session.commit()
    html = page(manager, lab, onglet="a-verifier")
    assert "Douteuse" in html and "jamais renvoyé automatiquement" in html
    assert "1 envoi à vérifier" in manager.get(f"/labs/{lab.id}").get_data(as_text=True)

    response = post(manager, lab, f"{row.id}/verification", outcome="sent")
    assert response.status_code == 302
    db.session.refresh(row)
    assert row.status == "sent" and "Camille Cheffe" in row.reason and row.sent_at
    event = db.session.scalar(sa.select(Event).where(Event.kind == "followup.reviewed"))
    assert event.registration_id == row.registration_id and event.data["status"] == "sent"

    response = post(manager, lab, f"{row.id}/verification", outcome="not_sent")
    db.session.refresh(row)
    assert row.status == "sent"
    assert "déjà été vérifié" in manager.get(response.headers["Location"]).get_data(as_text=True)
    # The send job leaves a reviewed row alone.
    assert sending.send(row.id) == "sent"
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


def test_review_refuses_a_bad_outcome_or_another_labs_row(manager, world):
    lab = world["lab"]
    row = first_sms(reachable(world))
    row.status = "unknown"
    db.session.commit()
    response = post(manager, lab, f"{row.id}/verification", outcome="resend")
    assert "Choisissez « Envoyé » ou « Non envoyé »" in manager.get(
        response.headers["Location"]
    ).get_data(as_text=True)
    elsewhere = other_lab()
    assert post(manager, elsewhere, f"{row.id}/verification", outcome="sent").status_code == 404
    db.session.refresh(row)
    assert row.status == "unknown"
