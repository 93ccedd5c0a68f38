"""What the follow-up engine does after something happened to a registration.

Each intent is recorded as a "followup.intent" event (the timeline shows it) and acted on:

- start_invitation: one FollowUp row per step of the lab's invitation sequence (never twice:
  unique on registration and step), due at registration time + offset.
- stop_invitation: the invitation rows still scheduled or queued are cancelled with a reason.
- start_reminders: one row per reminder step, relative to the lab start; a reminder whose
  time is already past, or not before the lab start, is skipped with a reason.

`start_thank_you` (no intent yet: the lab-day service calls it when someone attended) schedules
the thank-you sequence after the lab end. A new registration starts its invitation
(`on_registration_created`, called by crm.services.registrations.register;
`start_invitations_bulk` is the same for register_many).

Every due time is moved to the next opening of the send window; the send job checks the
window again at send time (crm.services.sending).
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import sqlalchemy as sa

from crm.extensions import db
from crm.models import Event, FollowUp, Lab, Registration, SequenceStep, User
from crm.models.followup import OPEN_STATUSES, Sequence
from crm.services import sequences
from crm.services.bulk_sql import bulk_insert
from crm.services.window import next_opening, send_window
from crm.timeutil import local_zone, utcnow

START_INVITATION = "start_invitation"
STOP_INVITATION = "stop_invitation"
START_REMINDERS = "start_reminders"
STOP_REMINDERS = "stop_reminders"
INTENT_LABELS = {
    START_INVITATION: "démarrer les relances d'invitation",
    STOP_INVITATION: "arrêter les relances d'invitation",
    START_REMINDERS: "programmer les rappels avant le lab",
    STOP_REMINDERS: "annuler les rappels avant le lab",
}
# What a status change set by hand (prospect page, replies) means for the follow-ups.
STATUS_INTENTS = {
    "interested": [START_INVITATION],
    "confirmed": [STOP_INVITATION, START_REMINDERS],
    "declined": [STOP_INVITATION, STOP_REMINDERS],
    "cancelled": [STOP_INVITATION, STOP_REMINDERS],
    "disqualified": [STOP_INVITATION, STOP_REMINDERS],
    "waitlisted": [STOP_INVITATION],
}


def on_registration_change(
    registration: Registration, intents: list[str], actor: User | None, why: str
) -> None:
    """Tell the follow-up engine what to do next for this registration; the caller commits."""
    if not intents:
        return
    unknown = set(intents) - set(INTENT_LABELS)
    if unknown:
        raise ValueError(f"unknown follow-up intents: {sorted(unknown)}")
    db.session.add(
        Event(
            kind="followup.intent",
            actor_id=actor.id if actor else None,
            prospect_id=registration.prospect_id,
            lab_id=registration.lab_id,
            registration_id=registration.id,
            reason=why,
            data={"intents": intents},
        )
    )
    now = utcnow()
    for intent in intents:
        if intent == START_INVITATION:
            start_invitation(registration, now)
        elif intent == STOP_INVITATION:
            cancel_open(registration, "invitation", f"Relances d'invitation arrêtées : {why}")
        elif intent == START_REMINDERS:
            start_reminders(registration, now)
        elif intent == STOP_REMINDERS:
            cancel_open(registration, "reminders", f"Rappels annulés : {why}")


def on_registration_created(registration: Registration) -> None:
    """A new registration starts its invitation sequence (its "registration.created" event
    already tells the timeline; no separate intent event)."""
    start_invitation(registration, utcnow())


def step_due(step: SequenceStep, trigger: datetime) -> datetime:
    """trigger + offset, or that day's local `day_time` when the step has one (aware UTC).
    The offset is added to the local wall clock: "+5 days" after Thursday 19:30 is Tuesday
    19:30 in Paris, even across a daylight-saving change."""
    local = trigger.astimezone(local_zone()) + timedelta(minutes=step.offset_minutes)
    if step.day_time is not None:
        local = datetime.combine(local.date(), step.day_time, tzinfo=local_zone())
    return local.astimezone(trigger.tzinfo)


def _existing_positions(registration_id: int, kind: str) -> set[int]:
    """Positions of the steps of that kind the registration already has a row for."""
    rows = db.session.scalars(
        sa.select(SequenceStep.position)
        .join(FollowUp, FollowUp.step_id == SequenceStep.id)
        .join(Sequence, Sequence.id == SequenceStep.sequence_id)
        .where(FollowUp.registration_id == registration_id, Sequence.kind == kind)
    )
    return set(rows)


def live_steps(sequence: Sequence) -> list[SequenceStep]:
    """The steps still in the sequence (a removed step keeps its row for history)."""
    return [step for step in sequence.steps if step.removed_at is None]


def start_invitation(registration: Registration, now: datetime) -> list[FollowUp]:
    sequence = sequences.sequence_for("invitation", registration.lab_id)
    existing = _existing_positions(registration.id, "invitation")
    window = send_window(registration.lab)
    created = []
    for step in live_steps(sequence):
        if step.position in existing:
            continue
        due = next_opening(step_due(step, now), window)
        created.append(_add(registration, step, due))
    return created


def start_invitations_bulk(lab_id: int, registration_ids: list[int], now: datetime) -> int:
    """start_invitation for registrations just created in bulk (imports: they have no rows
    yet), in one multi-row insert; the caller commits. Returns the number of rows."""
    if not registration_ids:
        return 0
    sequence = sequences.sequence_for("invitation", lab_id)
    window = send_window(db.session.get(Lab, lab_id))
    dues = [(step.id, next_opening(step_due(step, now), window)) for step in live_steps(sequence)]
    rows = [
        {"registration_id": rid, "step_id": step_id, "due_at": due, "status": "scheduled"}
        for rid in registration_ids
        for step_id, due in dues
    ]
    bulk_insert(FollowUp.__table__, rows)
    return len(rows)


def start_reminders(registration: Registration, now: datetime) -> list[FollowUp]:
    sequence = sequences.sequence_for("reminders", registration.lab_id)
    existing = _existing_positions(registration.id, "reminders")
    starts_at = registration.lab.starts_at
    window = send_window(registration.lab)
    created: list[tuple[SequenceStep, FollowUp]] = []
    for step in live_steps(sequence):
        if step.position in existing:
            continue
        due = next_opening(step_due(step, starts_at), window)
        row = _add(registration, step, due)
        reason = reminder_refusal(due, starts_at, now)
        if reason:
            row.status, row.reason = "skipped", reason
        created.append((step, row))
    _one_reminder_a_day(created)
    return [row for _, row in created]


def reminder_refusal(due: datetime, starts_at: datetime, now: datetime) -> str | None:
    """Why a reminder due then is not worth sending, or None."""
    if due >= starts_at:
        return "Le rappel arriverait après le début du lab."
    if due < now:
        return "La date de ce rappel est déjà passée."
    return None


def _one_reminder_a_day(planned: list[tuple[SequenceStep, FollowUp]]) -> None:
    """Two reminders of one channel moved onto the same day by the send window (a Monday lab:
    "2 days before" falls on Saturday and moves to Monday, the morning of the lab): only the
    later step goes, it is the one written for that moment."""
    live = [(step, row) for step, row in planned if row.status in (None, "scheduled")]
    live.sort(key=lambda pair: pair[0].position)
    for (step, row), (next_step, next_row) in itertools.pairwise(live):
        day, next_day = (r.due_at.astimezone(local_zone()).date() for r in (row, next_row))
        if day == next_day and step.channel == next_step.channel:
            row.status = "skipped"
            row.reason = "Un autre rappel part le même jour : celui-ci n'est pas envoyé."


def start_thank_you(registration: Registration, now: datetime | None = None) -> list[FollowUp]:
    """The thank-you sequence after the lab end (for the lab-day service to call on
    "attended"); steps already past are skipped."""
    now = now or utcnow()
    sequence = sequences.sequence_for("thank_you", registration.lab_id)
    existing = _existing_positions(registration.id, "thank_you")
    window, created = send_window(registration.lab), []
    for step in live_steps(sequence):
        if step.position not in existing:
            row = _add(
                registration, step, next_opening(step_due(step, registration.lab.ends_at), window)
            )
            if row.due_at < now - timedelta(days=1):
                row.status, row.reason = "skipped", "La date de ce message est déjà passée."
            created.append(row)
    return created


def _add(registration: Registration, step: SequenceStep, due: datetime) -> FollowUp:
    row = FollowUp(registration_id=registration.id, step_id=step.id, due_at=due)
    db.session.add(row)  # flushed with the others: one multi-row INSERT
    return row


def cancel_open(registration: Registration, kind: str, reason: str) -> int:
    """Cancel this registration's still-open rows of one sequence kind; returns how many."""
    step_ids = (
        sa.select(SequenceStep.id)
        .join(Sequence, Sequence.id == SequenceStep.sequence_id)
        .where(Sequence.kind == kind)
    )
    return cancel_open_where(
        reason, FollowUp.registration_id == registration.id, FollowUp.step_id.in_(step_ids)
    )


def cancel_open_where(reason: str, *conditions: sa.ColumnElement[bool]) -> int:
    """Cancel the still-open rows (scheduled or queued: the send job only acts on `queued`
    conditionally) matching `conditions`, with a reason; returns how many."""
    result = db.session.execute(
        sa.update(FollowUp)
        .where(FollowUp.status.in_(OPEN_STATUSES), *conditions)
        .values(status="cancelled", reason=reason, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
