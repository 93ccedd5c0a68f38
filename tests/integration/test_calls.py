"""Every call outcome's effect, and the refusals (lease, stale page, bad callback)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.models import Call, CallTask, Consent, Event, Prospect
from crm.services import call_queue, calls
from crm.services.calls import CallError, Outcome
from crm.services.window import call_window, is_open
from crm.timeutil import utcnow
from tests.factories import person, task

PARIS = ZoneInfo("Europe/Paris")


def next_weekday_at(hour: int) -> datetime:
    """A future Tuesday-to-Thursday at `hour`, Paris time (never a public holiday here)."""
    day = (utcnow() + timedelta(days=7)).astimezone(PARIS).date()
    while day.weekday() not in (1, 2, 3) or (day.month, day.day) in {
        (12, 25),
        (1, 1),
        (5, 1),
        (5, 8),
        (11, 11),
    }:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=PARIS)


@pytest.fixture
def served(world):
    registration = person(world)
    result = call_queue.next_call(world["lab"].id, world["alice"])
    assert result.registration.id == registration.id
    return world, registration


def log(world, registration, outcome, **kw):
    return calls.log_outcome(registration, world["alice"], Outcome(outcome=outcome, **kw))


def intents(registration):
    events = db.session.scalars(
        sa.select(Event).where(
            Event.registration_id == registration.id, Event.kind == "followup.intent"
        )
    ).all()
    return [i for e in events for i in e.data["intents"]]


@pytest.mark.parametrize(
    "outcome,status,intent",
    [
        ("no_answer", "contacted", ["start_invitation"]),
        ("voicemail", "contacted", ["start_invitation"]),
        ("interested", "interested", ["start_invitation"]),
        ("confirmed", "confirmed", ["stop_invitation", "start_reminders"]),
        ("declined", "declined", ["stop_invitation", "stop_reminders"]),
    ],
)
def test_outcomes_move_the_registration_and_tell_the_followup_engine(
    served, outcome, status, intent
):
    world, registration = served
    call = log(world, registration, outcome, notes="Note d'appel")
    db.session.refresh(registration)
    assert registration.status == status
    assert intents(registration) == intent
    assert call.caller_id == world["alice"].id and call.notes == "Note d'appel"
    prospect = db.session.get(Prospect, registration.prospect_id)
    assert prospect.leased_by_id is None  # the lease is released on logging
    logged = db.session.scalar(sa.select(Event).where(Event.kind == "call.logged"))
    assert logged.data["outcome"] == outcome and logged.actor_id == world["alice"].id


def test_no_answer_is_served_again_only_after_the_retry_delay(served):
    world, registration = served
    log(world, registration, "no_answer")
    assert call_queue.next_call(world["lab"].id, world["bob"]) is None
    later = utcnow() + timedelta(hours=4, minutes=1)
    again = call_queue.next_call(world["lab"].id, world["bob"], now=later)
    assert again.registration.id == registration.id


def test_callback_creates_a_task_served_first_when_due(served):
    world, registration = served
    when = next_weekday_at(11)
    log(world, registration, "callback", callback_at=when)
    callback = db.session.scalar(sa.select(CallTask))
    assert (callback.kind, callback.status, callback.due_at) == ("callback", "open", when)
    person(world, age_minutes=1000)  # someone older, not reached: still after the callback
    served_then = call_queue.next_call(
        world["lab"].id, world["bob"], now=when + timedelta(minutes=1)
    )
    assert served_then.registration.id == registration.id and served_then.task.id == callback.id
    calls.log_outcome(
        registration,
        world["bob"],
        Outcome("interested"),
        served_then.task,
        now=when + timedelta(minutes=2),
    )
    db.session.refresh(callback)
    assert callback.status == "done"


@pytest.mark.parametrize(
    "when,message",
    [
        (lambda: utcnow() - timedelta(hours=1), "passée"),
        (lambda: next_weekday_at(22), "heures d'appel"),
        (lambda: next_weekday_at(7), "heures d'appel"),
        (lambda: None, "date et l'heure"),
    ],
)
def test_callback_in_the_past_or_outside_calling_hours_is_refused(served, when, message):
    world, registration = served
    with pytest.raises(CallError, match=message):
        log(world, registration, "callback", callback_at=when())
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Call)) == 0


def test_callback_on_a_sunday_or_a_public_holiday_is_refused(served):
    world, registration = served
    year = utcnow().year + 1
    with pytest.raises(CallError, match="heures d'appel"):
        log(world, registration, "callback", callback_at=datetime(year, 7, 14, 11, tzinfo=PARIS))
    sunday = next_weekday_at(11)
    sunday += timedelta(days=(6 - sunday.weekday()))
    with pytest.raises(CallError, match="heures d'appel"):
        log(world, registration, "callback", callback_at=sunday)


def test_not_a_potential_user_needs_a_reason_and_disqualifies(served):
    world, registration = served
    with pytest.raises(CallError, match="Indiquez pourquoi"):
        log(world, registration, "not_potential_user")
    db.session.rollback()
    log(world, registration, "not_potential_user", reason="Ne reçoit pas de public")
    db.session.refresh(registration)
    prospect = db.session.get(Prospect, registration.prospect_id)
    assert registration.status == "disqualified"
    assert (prospect.qualification, prospect.disqualification_reason) == (
        "no",
        "Ne reçoit pas de public",
    )


def test_wrong_number_flags_the_phone_and_takes_the_person_out_of_the_queue(served):
    world, registration = served
    log(world, registration, "wrong_number")
    prospect = db.session.get(Prospect, registration.prospect_id)
    assert prospect.phone is None and "mauvais numéro" in prospect.phone_raw
    assert (
        call_queue.next_call(world["lab"].id, world["bob"], now=utcnow() + timedelta(days=3))
        is None
    )


def test_oral_consent_is_recorded_with_who_and_when(served):
    world, registration = served
    log(world, registration, "interested", consent_sms=True, consent_email=True)
    rows = db.session.scalars(sa.select(Consent).order_by(Consent.channel)).all()
    assert [(r.channel, r.method, r.from_person, r.recorded_by_id) for r in rows] == [
        ("email", "oral", True, world["alice"].id),
        ("sms", "oral", True, world["alice"].id),
    ]
    prospect = db.session.get(Prospect, registration.prospect_id)
    assert prospect.allow_sms and prospect.allow_email


def test_logging_on_a_colleagues_lease_is_refused(served):
    world, registration = served
    with pytest.raises(CallError, match="collègue"):
        calls.log_outcome(registration, world["bob"], Outcome("confirmed"))
    db.session.rollback()
    assert db.session.get(type(registration), registration.id).status == "to_contact"


def test_a_page_opened_before_someone_else_changed_the_person_is_refused(served):
    world, registration = served
    prospect = db.session.get(Prospect, registration.prospect_id)
    seen_version = prospect.version
    prospect.notes = "Changé par un collègue"
    db.session.commit()
    with pytest.raises(CallError, match="modifiée par quelqu'un d'autre"):
        log(
            world,
            registration,
            "confirmed",
            prospect_version=seen_version,
            registration_version=registration.version,
        )
    db.session.rollback()
    assert db.session.get(type(registration), registration.id).status == "to_contact"


def test_confirming_cancels_open_tasks(served):
    world, registration = served
    relance = task(world, registration, kind="followup_call", due_minutes=60)
    log(world, registration, "confirmed")
    db.session.refresh(relance)
    assert relance.status == "cancelled"


def test_skip_frees_the_lease_and_serves_the_person_later(served):
    world, registration = served
    calls.skip(registration, world["alice"])
    assert call_queue.next_call(world["lab"].id, world["bob"]) is None
    later = call_queue.next_call(world["lab"].id, world["bob"], now=utcnow() + timedelta(hours=2))
    assert later.registration.id == registration.id


def test_a_missed_call_never_moves_a_registration_backwards(world):
    registration = person(world, "interested")
    relance = task(world, registration, kind="to_read")
    served = call_queue.next_call(world["lab"].id, world["alice"])
    assert served.task.id == relance.id
    calls.log_outcome(registration, world["alice"], Outcome("no_answer"), served.task)
    db.session.refresh(registration)
    assert registration.status == "interested"


def test_a_confirmed_person_with_an_open_task_is_not_served(world):
    registration = person(world, "confirmed")
    task(world, registration, kind="followup_call")
    assert call_queue.next_call(world["lab"].id, world["alice"]) is None


def test_a_stale_page_cannot_free_a_colleagues_fresh_lease(served):
    world, registration = served
    # Alice's lease expires; Bob is served the person; Alice posts from her old page.
    later = utcnow() + timedelta(minutes=16)
    again = call_queue.next_call(world["lab"].id, world["bob"], now=later)
    assert again.registration.id == registration.id
    # Alice's request read the person before Bob's claim: the release itself must refuse.
    prospect = db.session.get(Prospect, registration.prospect_id)
    with pytest.raises(CallError, match="collègue"):
        calls._release_lease(prospect, world["alice"], later)
    db.session.rollback()
    holder = db.session.scalar(
        sa.select(Prospect.leased_by_id).where(Prospect.id == registration.prospect_id)
    )
    assert holder == world["bob"].id


def test_consent_cannot_be_recorded_with_a_refusal(served):
    world, registration = served
    with pytest.raises(CallError, match="accord pour les SMS"):
        log(world, registration, "declined", consent_sms=True)
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Consent)) == 0


def test_a_callback_more_than_a_year_ahead_is_refused(served):
    world, registration = served
    when = next_weekday_at(11) + timedelta(weeks=56)
    while not is_open(when, call_window()):  # a public holiday: the week after
        when += timedelta(weeks=1)
    with pytest.raises(CallError, match="l'année qui vient"):
        log(world, registration, "callback", callback_at=when)
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Call)) == 0
