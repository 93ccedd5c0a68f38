"""The send job's logic: the sending rules (crm.services.send_rules) checked at send time,
in one place, against what the database holds.

`send(followup_id)` runs in an RQ worker (workers.jobs.send_followup) and is safe to run
twice: it acts only on a row in `queued`, moves it with conditional UPDATEs, and commits the
row in `sending` (with its Message, created `sending` in the same transaction) before the
provider is called; the provider's answer, the row's `sent` and its event are one commit.
A row found in `sending` means a worker died during the provider call: it becomes `unknown`
for a manager to review and is never sent again automatically. SMS are paced per sender
(`pace_sms`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from crm.extensions import db
from crm.messaging import errors
from crm.messaging.delivery import Accepted, record_success
from crm.messaging.email import deliver_email, prepare_email
from crm.messaging.errors import SendError
from crm.messaging.sms import can_look_up, current_sender, deliver_sms, find_sent_sms, prepare_sms
from crm.models import Event, FollowUp, Message, Registration, SequenceStep
from crm.models.followup import SEQUENCE_KIND_LABELS
from crm.redis_conn import get_redis
from crm.services import call_queue, prospects, sequences, waitlist
from crm.services.send_rules import (
    permission_refusal,
    pressure_refusal,
    quiet_refusal,
    relevance_refusal,
    retry_at,
    window_move,
)
from crm.services.window import Window, send_window
from crm.timeutil import UTCDateTime, utcnow

MAX_RETRIES = 3  # "retry later" errors: at most 3 more attempts after the first
# After the provider took a message, recording it waits this long for a database that
# went away (seconds between tries, about a minute in all): the alternative is a row left
# `sending`, which goes to review although it was sent.
DB_RETRY_PAUSES = (0.5, 1, 2, 4, 8, 15, 15, 15)
LOOKUP_MARGIN = timedelta(minutes=5)  # clocks differ: the provider's creation time may be earlier
CHANNEL_FIELDS = {"sms": ("allow_sms", "phone"), "email": ("allow_email", "email")}
PAUSED_REASON = "Envois suspendus pour cet open lab."
INTERRUPTED_REASON = "Envoi interrompu : à vérifier."
FOUND_REASON = "Envoyé : l'opérateur l'avait reçu malgré le délai dépassé."
NOT_FOUND_ERROR = "L'opérateur n'avait pas reçu ce SMS (vérifié) : il est renvoyé."
BLOCKED_REASON = "L'opérateur refuse les SMS vers ce numéro : appel uniquement."


# --- Checks against the database -------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    action: str  # "send", "skip" or "reschedule"
    reason: str = ""
    when: datetime | None = None


@dataclass(frozen=True)
class Counts:
    """What check() reads besides the row: one query of scalar subqueries."""

    sent_recently: int  # automated messages sent to the person since `since`
    last_decline: datetime | None  # the person's last refusal, any lab
    taken: int | None  # the lab's places taken (invitations only, else None)


@cache
def _counts_query(with_lab: bool) -> sa.Select[Any]:
    """Built once (with bound parameters), so that a send neither builds nor hashes it."""
    since = sa.bindparam("since", type_=UTCDateTime())
    person = sa.bindparam("prospect_id", type_=sa.Integer())
    # Status and date are conditions of the count, not of the WHERE: the person is then the
    # only filter and their few rows are read through their registrations. With `sent_at` in
    # the WHERE, PostgreSQL read every message sent in the period (ix_followups_sent_at):
    # a send cost grew with the number of messages sent, 5 ms at 3,000.
    recent = sa.and_(FollowUp.status.in_(("sent", "delivered")), FollowUp.sent_at >= since)
    sent = (
        sa.select(sa.func.count(sa.case((recent, FollowUp.id))))
        .join(Registration, Registration.id == FollowUp.registration_id)
        .join(SequenceStep, SequenceStep.id == FollowUp.step_id)
        .where(Registration.prospect_id == person, SequenceStep.channel.in_(("sms", "email")))
        .scalar_subquery()
    )
    declined = (
        sa.select(sa.func.max(Event.created_at))
        .where(
            Event.prospect_id == person,
            Event.kind == "registration.status",
            Event.to_status == "declined",
        )
        .scalar_subquery()
    )
    lab = sa.bindparam("lab_id", type_=sa.Integer())
    taken = waitlist.taken_expression(lab) if with_lab else sa.null()
    return sa.select(sent, declined, taken)


def _counts(prospect_id: int, lab_id: int | None, since: datetime) -> Counts:
    params: dict[str, Any] = {"prospect_id": prospect_id, "since": since}
    if lab_id is not None:
        params["lab_id"] = lab_id
    row = db.session.execute(_counts_query(lab_id is not None), params).one()
    return Counts(int(row[0] or 0), row[1], None if row[2] is None else int(row[2]))


def check(row: FollowUp, now: datetime) -> Decision:
    """Every sending rule, with a French reason for each refusal."""
    registration, step = row.registration, row.step
    kind, prospect, config = step.sequence.kind, registration.prospect, current_app.config
    cap, days = int(config["PRESSURE_CAP_MESSAGES"]), int(config["PRESSURE_CAP_DAYS"])
    lab_id = registration.lab_id if kind == "invitation" else None
    counts = _counts(prospect.id, lab_id, now - timedelta(days=days))
    started = now >= registration.lab.starts_at
    # No place left (capacity + overbooking, offers holding a place count): inviting more
    # people would only fill the waiting list.
    full = counts.taken is not None and waitlist.free_places(registration.lab, counts.taken) == 0
    reason = "Étape retirée de la séquence." if step.removed_at is not None else None
    reason = reason or relevance_refusal(kind, registration.status, started, full)
    if reason is None and step.channel == "call":
        reason = permission_refusal("call", prospect.allow_phone, prospect.phone)
    if reason is None and step.channel != "call":
        allow, field = CHANNEL_FIELDS[step.channel]
        invalid = step.channel == "sms" and prospect.phone_invalid
        reason = permission_refusal(
            step.channel, getattr(prospect, allow), getattr(prospect, field), invalid
        )
        if reason is None and step.channel == "sms" and prospect.sms_blocked_at:
            reason = BLOCKED_REASON
    if reason is None:
        quiet_days = int(config["REFUSAL_QUIET_DAYS"])
        reason = quiet_refusal(counts.last_decline, now, quiet_days)
    if reason is not None:
        return Decision("skip", reason)
    if step.channel == "call":
        return Decision("send")
    moved = window_move(now, send_window(registration.lab))
    if moved is not None:
        return Decision("reschedule", "Hors de la fenêtre d'envoi.", moved)
    reason = pressure_refusal(counts.sent_recently, cap, days)
    return Decision("skip", reason) if reason else Decision("send")


# --- The send job ----------------------------------------------------------------------------


def _move(row: FollowUp, expected: str, **values: Any) -> bool:
    """Conditional UPDATE from `expected`; commits and sets the moved values on the row (no
    reload) when it moved, else rolls back (the row is then reloaded on next access)."""
    values.setdefault("updated_at", utcnow())
    result = db.session.execute(
        sa.update(FollowUp)
        .where(FollowUp.id == row.id, FollowUp.status == expected)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    moved = result.rowcount == 1  # type: ignore[attr-defined]
    if moved:
        db.session.commit()
        for key, value in values.items():
            set_committed_value(row, key, value)
    else:
        db.session.rollback()
    return moved


# What the send-time rules read, loaded with the row in one query instead of five.
_WITH_CONTEXT = (
    joinedload(FollowUp.registration).joinedload(Registration.prospect),
    joinedload(FollowUp.registration).joinedload(Registration.lab),
    joinedload(FollowUp.step).joinedload(SequenceStep.sequence),
)


@contextmanager
def _loaded_across_commits() -> Iterator[None]:
    """The job's own commits do not expire what it loaded (a commit would otherwise reload
    the row, its registration, step and prospect on next access): what it changes it sets
    itself (`_move`). At the end everything is expired, as after a commit, so a caller
    sharing the session reads fresh values."""
    session = db.session()
    saved = session.expire_on_commit
    session.expire_on_commit = False
    try:
        yield
    finally:
        session.expire_on_commit = saved
        session.expire_all()


def send(followup_id: int) -> str:
    """Send one due follow-up if it is still relevant; returns the row's final status."""
    with _loaded_across_commits():
        return _send(followup_id)


def _send(followup_id: int) -> str:
    row = db.session.get(FollowUp, followup_id, options=_WITH_CONTEXT)
    if row is None:
        return "absent"
    if row.status == "sending":
        if _move(row, "sending", status="unknown", reason=INTERRUPTED_REASON):
            record_interrupted(row)
            db.session.commit()
        return row.status
    if row.status != "queued":
        return row.status
    if row.registration.lab.sending_paused:
        # Claimed just before a manager paused the lab: back to the schedule, sent on resume.
        _move(row, "queued", status="scheduled", queued_at=None, reason=PAUSED_REASON)
        return row.status
    now = utcnow()
    decision = check(row, now)
    if decision.action == "skip":
        _move(row, "queued", status="skipped", reason=decision.reason)
    elif decision.action == "reschedule":
        _move(row, "queued", status="scheduled", due_at=decision.when, queued_at=None)
    elif row.step.channel == "call":
        _call_task(row, now)
    else:
        _deliver(row)
    return row.status


def _call_task(row: FollowUp, now: datetime) -> None:
    call_queue.add_task(row.registration, "followup_call", row.step.body)
    _move(row, "queued", status="sent", sent_at=now, reason="Tâche d'appel créée.")


def _prepare(row: FollowUp) -> Message:
    """The Message, created `sending`: it is committed with the row's move to `sending`, the
    conditional UPDATE that only one job can pass (crm.messaging.delivery)."""
    registration, step = row.registration, row.step
    prospect = registration.prospect
    fields = sequences.fields_for(registration, prospect, registration.lab)
    body = sequences.render(step.body, fields)
    if step.channel == "sms":
        return prepare_sms(str(prospect.phone), body, prospect_id=prospect.id, claimed=True)
    subject = sequences.render(step.subject, fields)
    return prepare_email(
        str(prospect.email),
        subject,
        body,
        sequences.email_html(body),
        unsubscribe_url=fields["lien"],
        prospect_id=prospect.id,
        claimed=True,
    )


# Reserve the next free sending slot of a sender, shared by every worker: returns its time.
_RESERVE_SLOT = """
local now = tonumber(ARGV[1])
local step = tonumber(ARGV[2])
local at = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local ttl = math.ceil((at + step - now) * 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.6f', at + step), 'PX', ttl)
return string.format('%.6f', at)
"""


def pace_sms(sender: str) -> float:
    """Wait for this sender's next slot (SMS_RATE_PER_SECOND, default 1, shared through Redis)
    so that a large campaign is spread out instead of failing at the provider; returns the
    seconds waited."""
    rate = float(current_app.config["SMS_RATE_PER_SECOND"])
    key = f"crm:sms-pace:{sender}"
    slot = float(get_redis().eval(_RESERVE_SLOT, 1, key, f"{time.time():.6f}", 1.0 / rate))
    wait = max(0.0, slot - time.time())
    if wait:
        time.sleep(wait)
    return wait


def _deliver(row: FollowUp) -> None:
    if row.step.channel == "sms" and _settled_with_provider(row):
        return
    if row.step.channel == "sms":
        pace_sms(current_sender().value)
    try:
        message = _prepare(row)
    except sequences.TemplateError as exc:
        db.session.rollback()
        if _move(row, "queued", status="failed", reason=str(exc)):
            _event(row, "message.failed", f"Modèle de message invalide : {exc}", None)
            db.session.commit()
        return
    # One commit: the Message (created `sending`) and the row moved to `sending`.
    if not _move(row, "queued", status="sending", message_id=message.id):
        return  # another job took the row; the rollback dropped our Message
    try:
        if message.channel == "sms":
            deliver_sms(message, claimed=True, commit=False)
        else:
            deliver_email(message, claimed=True, commit=False)
    except SendError as error:
        db.session.expire_all()  # the failure's effects read fresh rows (e.g. the prospect)
        record_failure(row, error)
        return
    accepted = Accepted(message.provider_id, message.provider_status, message.segments)
    _record_sent(row, message.id, accepted, "")


def _record_sent(row: FollowUp, message_id: int, accepted: Accepted, reason: str) -> None:
    """One commit: the provider's answer on the Message, the row `sent` and its event; tried
    again while the database is unreachable (DB_RETRY_PAUSES)."""
    for pause in (*DB_RETRY_PAUSES, None):
        try:
            message = db.session.get(Message, message_id)
            assert message is not None
            record_success(message, accepted, commit=False)
            row.status, row.sent_at, row.reason = "sent", utcnow(), reason
            label = "SMS envoyé" if message.channel == "sms" else "E-mail envoyé"
            kind = SEQUENCE_KIND_LABELS[row.step.sequence.kind]
            _event(row, "message.sent", f"{label} : {kind}", message)
            db.session.commit()
            return
        except (sa.exc.OperationalError, sa.exc.InterfaceError):
            db.session.rollback()
            if pause is None:
                raise  # left `sending`: the dispatcher sends it to review
            time.sleep(pause)


def _settled_with_provider(row: FollowUp) -> bool:
    """A retry after a send left in doubt (the provider's answer was lost) first asks the
    provider whether it has the message: found, the row is sent without a second SMS; not
    found, the first try is marked failed and the send goes on. True when the row is done."""
    doubt = db.session.get(Message, row.message_id) if row.message_id else None
    if doubt is None or doubt.status != "unknown":
        return False
    try:
        found = find_sent_sms(doubt, doubt.created_at - LOOKUP_MARGIN)
    except SendError as error:
        _retry_or_review(row, error)
        return True
    if found is None:
        doubt.status, doubt.error = "failed", NOT_FOUND_ERROR
        return False  # committed with the new try's Message (_move to `sending`)
    if _move(row, "queued", status="sending", reason=""):
        _record_sent(row, doubt.id, found, FOUND_REASON)
    return True


def _retry_or_review(row: FollowUp, error: SendError) -> None:
    """The provider could not be asked about a send in doubt: ask again later, a few times,
    then leave it to a manager; never send blind."""
    attempts = row.attempts + 1
    due = _next_try(attempts, send_window(row.registration.lab), _backoff())
    if due is not None:
        values = {"status": "scheduled", "due_at": due, "queued_at": None}
        reason = f"Vérification auprès de l'opérateur impossible : {error}"
    else:
        values, reason = {"status": "unknown"}, f"Envoi peut-être effectué : {error}"
    _move(row, "queued", attempts=attempts, reason=reason, **values)


def _next_try(attempts: int, window: Window, delay: timedelta) -> datetime | None:
    """When to try again after `attempts` tries (the delay ×4 each time, moved into the send
    window), or None: MAX_RETRIES more tries were made, the row is given up."""
    if attempts > MAX_RETRIES:
        return None
    return retry_at(utcnow(), attempts, window, delay)


def _backoff() -> timedelta:
    return timedelta(seconds=int(current_app.config["RETRY_BACKOFF_SECONDS"]))


def _lookup_delay() -> timedelta:
    """Ask the provider about a send in doubt only once any answer to it would have come:
    a request still on its way when asked would be reported absent, then sent twice."""
    timeout = float(current_app.config.get("TWILIO_TIMEOUT_SECONDS") or 10.0)
    return max(_backoff(), timedelta(seconds=4 * timeout))


def record_failure(row: FollowUp, error: SendError) -> None:
    """The effect of each kind of provider failure (at send time the row is in `sending`;
    from a delivery receipt it is `sent`); commits."""
    registration = row.registration
    message = db.session.get(Message, row.message_id) if row.message_id else None
    row.attempts += 1
    window = send_window(registration.lab)
    if error.maybe_sent:
        # The next try asks the provider first (_settled_with_provider): never a blind resend.
        due = _next_try(row.attempts, window, _lookup_delay()) if can_look_up() else None
        reason = f"À vérifier auprès de l'opérateur : {error}"
    else:
        retryable = error.kind in errors.RETRYABLE_KINDS
        due = _next_try(row.attempts, window, _backoff()) if retryable else None
        reason = f"Nouvel essai prévu : {error}"
    if due is not None:
        row.status, row.reason, row.due_at, row.queued_at = "scheduled", reason, due, None
    elif error.maybe_sent:
        row.status, row.reason = "unknown", f"Envoi peut-être effectué : {error}"
    else:
        row.status, row.reason = "failed", str(error)
        _failure_effects(registration, error)
    _event(row, "message.failed", f"Échec d'envoi : {error}", message)
    db.session.commit()


def _failure_effects(registration: Registration, error: SendError) -> None:
    prospect = registration.prospect
    if error.kind == errors.INVALID_NUMBER and prospect.phone:
        prospect.phone_raw, prospect.phone = f"{prospect.phone} (numéro invalide)", None
    if error.kind == errors.OPTED_OUT:
        prospects.set_permission(
            prospect, "sms", False, "sms_keyword", None, from_person=True, basis=str(error)
        )
    if error.kind == errors.BLOCKED:
        prospect.sms_blocked_at = utcnow()
    if error.kind in (errors.INVALID_NUMBER, errors.BLOCKED):
        call_queue.add_task(registration, "failed_sms", str(error))


def record_interrupted(row: FollowUp) -> None:
    """The timeline line of a send left in doubt (the row is already `unknown`)."""
    _event(row, "message.failed", INTERRUPTED_REASON, None)


def _event(row: FollowUp, kind: str, reason: str, message: Message | None) -> None:
    registration = row.registration
    db.session.add(
        Event(
            kind=kind,
            prospect_id=registration.prospect_id,
            lab_id=registration.lab_id,
            registration_id=registration.id,
            reason=reason,
            data={
                "followup_id": row.id,
                "channel": row.step.channel,
                "message_id": message.id if message else None,
                "sequence": row.step.sequence.kind,
            },
        )
    )
