"""The follow-up engine in process: scheduling, the send-time rules and each error's effect."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.models import (
    CallTask,
    Event,
    FollowUp,
    Lab,
    Message,
    Registration,
    Sequence,
    SequenceStep,
)
from crm.services import calls, followups, sending
from crm.services.registrations import change_status, transition
from crm.services.window import is_open, send_window
from crm.timeutil import utcnow
from tests.factories import person

if TYPE_CHECKING:
    from tests.fakes import FakeTwilioServer

pytest_plugins = ["tests.fakes"]


def reachable(world, status="to_contact", **fields):
    defaults = {"allow_sms": True, "allow_email": True}
    return person(world, status, **{**defaults, **fields})


def rows(registration, kind=None) -> list[FollowUp]:
    query = (
        sa.select(FollowUp)
        .join(SequenceStep, SequenceStep.id == FollowUp.step_id)
        .join(Sequence, Sequence.id == SequenceStep.sequence_id)
        .where(FollowUp.registration_id == registration.id)
        .order_by(SequenceStep.position)
    )
    if kind:
        query = query.where(Sequence.kind == kind)
    return list(db.session.scalars(query))


def due_now(row: FollowUp) -> FollowUp:
    row.status, row.due_at = "queued", utcnow() - timedelta(minutes=1)
    db.session.commit()
    return row


def step_row(registration, kind: str, channel: str) -> FollowUp:
    return next(r for r in rows(registration, kind) if r.step.channel == channel)


# --- scheduling ------------------------------------------------------------------------------


def test_a_new_registration_starts_the_invitation_once(world):
    reg = reachable(world)
    invitation = rows(reg, "invitation")
    assert [r.step.channel for r in invitation] == ["sms", "email", "call", "sms"]
    assert all(r.status == "scheduled" for r in invitation)
    window = send_window()
    for row, days in zip(invitation, (1, 3, 5, 8), strict=True):
        assert row.due_at >= reg.created_at + timedelta(days=days, seconds=-5)
        assert is_open(row.due_at, window)
    followups.on_registration_change(reg, [followups.START_INVITATION], None, "intéressé")
    db.session.commit()
    assert len(rows(reg)) == 4
    assert db.session.scalar(sa.select(sa.func.count(Sequence.id))) == 1


def test_confirmation_cancels_the_invitation_and_schedules_reminders(world):
    reg = reachable(world)
    transition(reg, "confirmed", None)
    intents = [followups.STOP_INVITATION, followups.START_REMINDERS]
    followups.on_registration_change(reg, intents, None, "appel : confirmed")
    db.session.commit()
    invitation = rows(reg, "invitation")
    assert {r.status for r in invitation} == {"cancelled"}
    assert all("arrêtées" in r.reason for r in invitation)
    reminders = rows(reg, "reminders")
    assert [r.step.channel for r in reminders] == ["email", "sms", "sms"]
    lab = reg.lab
    for row in reminders:
        if row.status == "scheduled":
            assert row.due_at < lab.starts_at
        else:
            assert row.status == "skipped" and row.reason
    assert reminders[0].status == "scheduled"
    event = db.session.scalar(sa.select(Event).where(Event.kind == "followup.intent"))
    assert event.data == {"intents": intents}


def test_reminders_already_past_are_skipped(world):
    lab = world["lab"]
    lab.starts_at = utcnow() + timedelta(days=1)
    lab.ends_at = lab.starts_at + timedelta(hours=3)
    reg = reachable(world, "confirmed")
    followups.on_registration_change(reg, [followups.START_REMINDERS], None, "test")
    db.session.commit()
    first, second = rows(reg, "reminders")[:2]
    assert first.status == "skipped" and "passée" in first.reason
    assert second.status == "skipped"


# --- the send job ----------------------------------------------------------------------------


def test_invitation_sms_goes_through_the_outbox(world, open_window):
    reg = reachable(world, first_name="Léa")
    row = due_now(step_row(reg, "invitation", "sms"))
    assert sending.send(row.id) == "sent"
    message = db.session.get(Message, row.message_id)
    assert message.status == "sent" and message.backend == "outbox"
    assert message.body.startswith("Bonjour Léa, l'équipe Open Lab")
    assert "http://localhost/r/" in message.body
    assert row.sent_at is not None and row.attempts == 0
    event = db.session.scalar(sa.select(Event).where(Event.kind == "message.sent"))
    assert event.registration_id == reg.id and event.data["message_id"] == message.id
    assert sending.send(row.id) == "sent"  # run twice: nothing more
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 1


def test_invitation_email_carries_the_unsubscribe_link(world, open_window):
    reg = reachable(world, email="lea@example.fr")
    row = due_now(step_row(reg, "invitation", "email"))
    assert sending.send(row.id) == "sent"
    message = db.session.get(Message, row.message_id)
    assert message.subject == "Invitation au lab « Lab »"
    assert message.list_unsubscribe and message.list_unsubscribe in message.body


def test_call_step_creates_a_call_task(world, open_window):
    reg = reachable(world)
    row = due_now(step_row(reg, "invitation", "call"))
    assert sending.send(row.id) == "sent"
    task = db.session.scalar(sa.select(CallTask))
    assert (task.kind, task.priority, task.registration_id) == ("followup_call", 1, reg.id)
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


def test_a_row_found_sending_goes_to_review_and_is_not_sent(world, open_window):
    reg = reachable(world)
    row = step_row(reg, "invitation", "sms")
    row.status = "sending"
    db.session.commit()
    assert sending.send(row.id) == "unknown"
    assert "vérifier" in row.reason
    assert sending.send(row.id) == "unknown"
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


def test_rows_not_queued_or_gone_are_left_alone(world, open_window):
    reg = reachable(world)
    row = step_row(reg, "invitation", "sms")
    assert sending.send(row.id) == "scheduled"
    assert sending.send(999_999) == "absent"


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda reg, world: transition(reg, "declined", None), "décliné"),
        (lambda reg, world: transition(reg, "confirmed", None), "confirmé"),
        (lambda reg, world: setattr(reg.prospect, "allow_sms", False), "pas autorisé"),
        (lambda reg, world: setattr(reg.prospect, "phone", None), "absente"),
        (lambda reg, world: setattr(world["lab"], "capacity", 1), "complet"),
        (
            lambda reg, world: setattr(world["lab"], "starts_at", utcnow() - timedelta(hours=1)),
            "commencé",
        ),
    ],
)
def test_send_time_refusals_skip_with_a_reason(world, open_window, setup, expected):
    reg = reachable(world)
    if expected == "complet":
        reachable(world, "confirmed")
    setup(reg, world)
    row = due_now(step_row(reg, "invitation", "sms"))
    assert sending.send(row.id) == "skipped"
    assert expected in row.reason
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


def test_nothing_for_sixty_days_after_a_refusal_in_another_lab(world, open_window):
    reg = reachable(world)
    other = Lab(
        title="Autre", starts_at=reg.lab.starts_at, ends_at=reg.lab.ends_at, status="recruiting"
    )
    db.session.add(other)
    db.session.commit()
    from crm.services.registrations import register

    other_reg, _ = register(reg.prospect, other, None)
    transition(other_reg, "declined", None, "pas disponible")
    row = due_now(step_row(reg, "invitation", "sms"))
    assert sending.send(row.id) == "skipped"
    assert "60 jours" in row.reason


def test_pressure_cap_counts_sent_messages_across_labs(world, open_window, app, monkeypatch):
    monkeypatch.setitem(app.config, "PRESSURE_CAP_MESSAGES", 2)
    reg = reachable(world, email="cap@example.fr")
    for channel in ("sms", "email"):
        assert sending.send(due_now(step_row(reg, "invitation", channel)).id) == "sent"
    last = due_now(rows(reg, "invitation")[3])
    assert sending.send(last.id) == "skipped"
    assert "Plafond" in last.reason


def test_outside_the_window_the_row_is_rescheduled(world, monkeypatch):
    monkeypatch.setattr("crm.services.send_rules.is_open", lambda now, w: False)
    monkeypatch.setattr("crm.services.send_rules.next_opening", lambda now, w: now + timedelta(1))
    reg = reachable(world)
    row = due_now(step_row(reg, "invitation", "sms"))
    assert sending.send(row.id) == "scheduled"
    assert row.due_at > utcnow() + timedelta(hours=23) and row.queued_at is None


# --- provider errors through the real twilio client ------------------------------------------


def _send_sms(world, fake: FakeTwilioServer, code: int):
    reg = reachable(world)
    fake.fail(reg.prospect.phone, code)
    row = due_now(step_row(reg, "invitation", "sms"))
    sending.send(row.id)
    return reg, row


def test_sms_through_the_fake_twilio_server(world, open_window, sms_via_twilio):
    reg = reachable(world)
    row = due_now(step_row(reg, "invitation", "sms"))
    assert sending.send(row.id) == "sent"
    assert [m["to"] for m in sms_via_twilio.sent] == [reg.prospect.phone]
    assert db.session.get(Message, row.message_id).provider_id.startswith("SM")


@pytest.mark.parametrize("code", [21211, 21614])
def test_invalid_number_moves_the_phone_and_creates_a_call_task(
    world, open_window, sms_via_twilio, code
):
    reg, row = _send_sms(world, sms_via_twilio, code)
    assert row.status == "failed" and row.reason
    prospect = reg.prospect
    assert prospect.phone is None and "numéro invalide" in prospect.phone_raw
    assert db.session.scalar(sa.select(CallTask.kind)) == "failed_sms"
    assert db.session.scalar(sa.select(Event).where(Event.kind == "message.failed"))


def test_stop_marks_sms_opted_out(world, open_window, sms_via_twilio):
    reg, row = _send_sms(world, sms_via_twilio, 21610)
    assert row.status == "failed"
    assert reg.prospect.allow_sms is False
    consent = db.session.scalar(sa.select(Event).where(Event.kind == "consent.changed"))
    assert consent.data["method"] == "sms_keyword" and consent.data["from_person"] is True


@pytest.mark.parametrize("code", [30005, 30006, 30007])
def test_blocked_number_fails_and_creates_a_call_task(world, open_window, sms_via_twilio, code):
    reg, row = _send_sms(world, sms_via_twilio, code)
    assert row.status == "failed"
    assert reg.prospect.phone is not None and reg.prospect.allow_sms
    assert reg.prospect.sms_blocked_at is not None
    assert db.session.scalar(sa.select(CallTask.kind)) == "failed_sms"
    # No more SMS to that number: the last invitation SMS is skipped, the e-mail still goes.
    last_sms = [r for r in rows(reg, "invitation") if r.step.channel == "sms"][-1]
    assert sending.send(due_now(last_sms).id) == "skipped"
    assert last_sms.reason == sending.BLOCKED_REASON
    assert len(sms_via_twilio.requests) == 1
    reg.prospect.email = "bloquee@test.fr"
    assert sending.send(due_now(step_row(reg, "invitation", "email")).id) == "sent"
    # A new number lifts the block.
    reg.prospect.phone = "+33699887766"
    assert reg.prospect.sms_blocked_at is None


def test_retry_later_is_retried_at_most_three_times(world, open_window, sms_via_twilio):
    _, row = _send_sms(world, sms_via_twilio, 30003)
    assert (row.status, row.attempts) == ("scheduled", 1)
    assert row.due_at > utcnow() + timedelta(minutes=4)
    for attempts in (2, 3, 4):  # the first attempt, then at most 3 retries
        sending.send(due_now(row).id)
        assert row.attempts == attempts
    assert row.status == "failed"
    assert len(sms_via_twilio.requests) == 4
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 4


def test_http_429_is_transient(world, open_window, sms_via_twilio):
    reg = reachable(world)
    sms_via_twilio.http_error(reg.prospect.phone, 429)
    row = due_now(step_row(reg, "invitation", "sms"))
    assert sending.send(row.id) == "scheduled"
    assert row.attempts == 1


def test_unknown_error_code_is_permanent(world, open_window, sms_via_twilio):
    _, row = _send_sms(world, sms_via_twilio, 21408)
    assert row.status == "failed" and row.attempts == 1
    assert db.session.scalar(sa.select(sa.func.count(CallTask.id))) == 0


def _timed_out(world, fake) -> FollowUp:
    """An SMS whose answer never came (Twilio answered after the client's 2 s timeout)."""
    reg = reachable(world)
    fake.slow(reg.prospect.phone, 3.0)
    row = due_now(step_row(reg, "invitation", "sms"))
    assert sending.send(row.id) == "scheduled"
    assert "vérifier auprès de l'opérateur" in row.reason and row.attempts == 1
    assert db.session.get(Message, row.message_id).status == "unknown"
    assert row.due_at > utcnow() + timedelta(minutes=4)
    fake.program(reg.prospect.phone)  # the provider answers at once again
    return row


def _posts(fake) -> int:
    return sum(r.method == "POST" for r in fake.requests)


def test_a_timed_out_sms_that_twilio_took_is_found_not_sent_again(
    world, open_window, sms_via_twilio
):
    row = _timed_out(world, sms_via_twilio)
    deadline = time.monotonic() + 5
    while not sms_via_twilio.sent and time.monotonic() < deadline:
        time.sleep(0.05)  # the slow answer still goes out, a second after the client gave up
    (taken,) = sms_via_twilio.sent
    assert sending.send(due_now(row).id) == "sent"
    assert row.reason == sending.FOUND_REASON
    message = db.session.get(Message, row.message_id)
    assert (message.status, message.provider_id) == ("sent", taken["sid"])
    assert _posts(sms_via_twilio) == 1 and len(sms_via_twilio.sent) == 1
    assert sending.send(row.id) == "sent"  # the job run twice: still one SMS
    assert _posts(sms_via_twilio) == 1


def test_a_timed_out_sms_that_twilio_never_took_is_sent_once_more(
    world, open_window, sms_via_twilio
):
    row = _timed_out(world, sms_via_twilio)
    first = row.message_id
    sms_via_twilio.reset()  # the provider has no trace of it
    assert sending.send(due_now(row).id) == "sent"
    assert db.session.get(Message, first).status == "failed"
    assert db.session.get(Message, first).error == sending.NOT_FOUND_ERROR
    assert row.message_id != first and len(sms_via_twilio.sent) == 1


def test_a_send_in_doubt_is_never_resent_blind(world, open_window, sms_via_twilio):
    row = _timed_out(world, sms_via_twilio)
    sms_via_twilio.stop()  # Twilio cannot be asked whether it took the SMS
    for attempts in (2, 3):
        assert sending.send(due_now(row).id) == "scheduled"
        assert row.attempts == attempts and "impossible" in row.reason
    assert sending.send(due_now(row).id) == "unknown"  # then a manager decides
    assert "peut-être" in row.reason
    assert _posts(sms_via_twilio) == 1
    row.status = "queued"  # even if something queued it again by mistake...
    db.session.commit()
    row.status = "unknown"
    db.session.commit()
    assert sending.send(row.id) == "unknown"  # ...an unknown row is never resent


def test_thank_you_follows_the_lab_end(world, open_window):
    reg = reachable(world, "confirmed", email="merci@example.fr")
    transition(reg, "attended", None)
    (row,) = followups.start_thank_you(reg)
    db.session.commit()
    assert row.due_at >= reg.lab.ends_at + timedelta(days=1)
    assert followups.start_thank_you(reg) == []  # never twice
    assert sending.send(due_now(row).id) == "sent"
    assert "Merci" in db.session.get(Message, row.message_id).subject


def test_default_sequences_exist_once_per_kind(world):
    from crm.services.sequences import default_sequence

    first = default_sequence("reminders")
    db.session.commit()
    assert default_sequence("reminders").id == first.id
    # A copy made by a concurrent first use never doubles a registration's rows: the rows are
    # matched by kind and position.
    reg = reachable(world)
    copy = Sequence(lab_id=None, kind="invitation", name="Copie")
    for row in rows(reg):
        step = SequenceStep(position=row.step.position, channel=row.step.channel, offset_minutes=0)
        copy.steps.append(step)
    db.session.add(copy)
    db.session.flush()
    for row, step in zip(rows(reg), copy.steps, strict=True):
        row.step_id = step.id
    db.session.commit()
    followups.on_registration_change(reg, [followups.START_INVITATION], None, "test")
    db.session.commit()
    assert len(rows(reg, "invitation")) == 4


def test_a_lab_sequence_replaces_the_default(world, open_window):
    lab = world["lab"]
    own = Sequence(lab_id=lab.id, kind="invitation", name="Invitation du lab")
    own.steps.append(
        SequenceStep(position=1, channel="sms", offset_minutes=60, body="Salut {prenom} {lien}")
    )
    db.session.add(own)
    db.session.commit()
    reg = reachable(world, first_name="Zoé")
    (row,) = rows(reg)
    assert sending.send(due_now(row).id) == "sent"
    assert db.session.get(Message, row.message_id).body.startswith("Salut Zoé http")


def test_a_template_with_an_unknown_field_fails_with_a_reason(world, open_window):
    lab = world["lab"]
    own = Sequence(lab_id=lab.id, kind="invitation", name="Invitation du lab")
    body = "Bonjour {prenom.__class__}"
    own.steps.append(SequenceStep(position=1, channel="sms", offset_minutes=60, body=body))
    db.session.add(own)
    db.session.commit()
    reg = reachable(world)
    (row,) = rows(reg)
    assert sending.send(due_now(row).id) == "failed"
    assert "Champ inconnu" in row.reason
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


def test_sms_are_paced_per_sender_across_workers(app, app_ctx, monkeypatch):
    monkeypatch.setitem(app.config, "SMS_RATE_PER_SECOND", 5.0)
    started = time.monotonic()
    waits = [sending.pace_sms("OpenLab") for _ in range(6)]
    elapsed = time.monotonic() - started
    assert waits[0] < 0.05
    assert elapsed >= 0.95  # 6 slots at 5 per second: the last one 1 s after the first
    assert sending.pace_sms("AutreNom") < 0.05  # another sender has its own pace


def test_bulk_registrations_get_their_invitation_rows(world):
    from crm.models import Prospect
    from crm.services.registrations import register_many

    people = [Prospect(source=world["source"], phone=f"+3361000000{i}") for i in range(3)]
    db.session.add_all(people)
    db.session.flush()
    lab = world["lab"]
    # An import registers people in bulk: their invitation rows are created with them.
    assert register_many(lab.id, [p.id for p in people], None, "import") == 3
    db.session.commit()
    ids = list(db.session.scalars(sa.select(Registration.id).where(Registration.lab_id == lab.id)))
    for registration_id in ids:
        reg = db.session.get(Registration, registration_id)
        assert [r.step.position for r in rows(reg)] == [1, 2, 3, 4]
        assert all(is_open(r.due_at, send_window()) for r in rows(reg))


# --- status changes set by hand ---------------------------------------------------------------


@pytest.mark.parametrize("target", ["declined", "cancelled", "disqualified"])
def test_leaving_confirmed_cancels_the_reminders(world, target):
    reg = reachable(world, status="confirmed")
    followups.on_registration_change(reg, followups.STATUS_INTENTS["confirmed"], None, "confirmé")
    db.session.commit()
    scheduled = [r for r in rows(reg, "reminders") if r.status == "scheduled"]
    assert scheduled
    change_status(reg, target, world["alice"], "ne viendra pas")
    db.session.commit()
    for row in rows(reg, "reminders"):
        db.session.refresh(row)
    reminders = rows(reg, "reminders")
    assert all(r.status in ("cancelled", "skipped") for r in reminders)
    assert all(
        "Rappels annulés" in r.reason for r in reminders if r.id in {s.id for s in scheduled}
    )


def test_a_declined_call_on_a_confirmed_person_cancels_the_reminders(world):
    reg = reachable(world, status="confirmed")
    followups.start_reminders(reg, utcnow())
    db.session.commit()
    assert "stop_reminders" in calls.INTENTS["declined"]
    followups.on_registration_change(reg, calls.INTENTS["declined"], None, "appel : declined")
    db.session.commit()
    assert {r.status for r in rows(reg, "reminders")} <= {"cancelled", "skipped"}


def test_a_monday_lab_gets_one_reminder_sms_on_its_morning_not_two(world):
    """ "2 days before" a Monday lab is a Saturday: it moves to Monday 10:00, where the
    morning-of-the-lab SMS already goes; only that one is sent."""
    from datetime import datetime, time

    from crm.services.window import is_holiday
    from crm.timeutil import local_zone

    day = (utcnow() + timedelta(days=30)).astimezone(local_zone()).date()
    while day.weekday() != 0 or is_holiday(day):
        day += timedelta(days=1)
    lab = world["lab"]
    lab.starts_at = datetime.combine(day, time(14, 0), tzinfo=local_zone())
    lab.ends_at = lab.starts_at + timedelta(hours=4)
    reg = reachable(world, status="confirmed")
    followups.start_reminders(reg, utcnow())
    db.session.commit()
    sms = [r for r in rows(reg, "reminders") if r.step.channel == "sms"]
    assert [r.status for r in sms] == ["skipped", "scheduled"]
    assert "même jour" in sms[0].reason
    assert sms[1].due_at.astimezone(local_zone()) == datetime.combine(
        day, time(10, 0), tzinfo=local_zone()
    )
    (email,) = [r for r in rows(reg, "reminders") if r.step.channel == "email"]
    assert email.status == "scheduled"
