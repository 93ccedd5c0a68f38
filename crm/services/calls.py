"""Logging a call: one outcome moves the registration, plans the next step, frees the lease."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from crm.extensions import db
from crm.models import Call, CallTask, Event, Prospect, Registration, User
from crm.models.call import CALL_OUTCOME_LABELS, CALL_OUTCOMES, REACHED_OUTCOMES
from crm.services import call_queue, followups, prospects, registrations, waitlist
from crm.services.followups import (
    START_INVITATION,
    START_REMINDERS,
    STOP_INVITATION,
    STOP_REMINDERS,
)
from crm.services.normalise import format_phone
from crm.services.window import call_window, is_open
from crm.timeutil import utcnow

INTERESTED_RECALL = timedelta(days=2)
# Status the registration moves to for each outcome (None: unchanged).
TARGET_STATUS = {
    "no_answer": "contacted",
    "voicemail": "contacted",
    "wrong_number": None,
    "callback": "contacted",
    "interested": "interested",
    "confirmed": "confirmed",
    "declined": "declined",
    "not_potential_user": "disqualified",
}
INTENTS = {
    "no_answer": [START_INVITATION],
    "voicemail": [START_INVITATION],
    "interested": [START_INVITATION],
    "confirmed": [STOP_INVITATION, START_REMINDERS],
    "declined": [STOP_INVITATION, STOP_REMINDERS],
    "not_potential_user": [STOP_INVITATION, STOP_REMINDERS],
}


# Outcomes that only record a first attempt: they never move a registration backwards.
ATTEMPT_OUTCOMES = frozenset({"no_answer", "voicemail", "callback"})


def target_status(outcome: str, current: str) -> str | None:
    """The status this outcome moves the registration to, or None to leave it as it is."""
    target = TARGET_STATUS[outcome]
    if target is None or target == current:
        return None
    if outcome in ATTEMPT_OUTCOMES and current != "to_contact":
        return None
    return target


STALE_MESSAGE = (
    "La fiche a été modifiée par quelqu'un d'autre depuis l'ouverture de la page. "
    "Rien n'a été enregistré : relisez la fiche à jour puis recommencez."
)
# Outcomes after which the person can have agreed to receive messages.
CONSENT_OUTCOMES = frozenset({"interested", "confirmed", "callback"})


class CallError(ValueError):
    """The outcome cannot be logged; the message is in French for the caller."""


@dataclass
class Outcome:
    outcome: str
    notes: str = ""
    callback_at: datetime | None = None
    reason: str = ""
    consent_sms: bool = False
    consent_email: bool = False
    prospect_version: int | None = None
    registration_version: int | None = None


def check(registration: Registration, caller: User, data: Outcome, now: datetime) -> None:
    """Refuse, with a French message, anything that would log a wrong or stale outcome."""
    prospect = registration.prospect
    if data.outcome not in CALL_OUTCOMES:
        raise CallError("Choisissez le résultat de l'appel.")
    if call_queue.leased_by_other(prospect, caller, now):
        raise CallError(
            "Un·e collègue est en train d'appeler cette personne : résultat non enregistré."
        )
    stale = (data.prospect_version not in (None, prospect.version)) or (
        data.registration_version not in (None, registration.version)
    )
    if stale:
        raise CallError(STALE_MESSAGE)
    if data.outcome == "callback":
        _check_callback(data.callback_at, now)
    if (data.consent_sms or data.consent_email) and data.outcome not in CONSENT_OUTCOMES:
        raise CallError(
            "Un accord pour les SMS ou les e-mails ne s'enregistre qu'avec un résultat "
            "« Intéressé·e », « Confirmé·e » ou « À rappeler » : décochez-le ou changez "
            "de résultat."
        )
    if data.outcome == "not_potential_user" and not data.reason.strip():
        raise CallError("Indiquez pourquoi cette personne n'est pas un utilisateur potentiel.")
    target = target_status(data.outcome, registration.status)
    if target:
        try:
            registrations.check_transition(registration.status, target)
        except registrations.TransitionError as exc:
            raise CallError(str(exc)) from exc


CALLBACK_HORIZON = timedelta(days=366)
CALLBACK_TOO_FAR = "Le rappel doit tomber dans l'année qui vient."
CALLBACK_PAST = "La date de rappel est passée : choisissez un moment à venir."


def _check_callback(when: datetime | None, now: datetime) -> None:
    if when is None:
        raise CallError("Indiquez la date et l'heure du rappel.")
    if when <= now:
        raise CallError(CALLBACK_PAST)
    window = call_window()
    if not is_open(when, window):
        raise CallError(f"Le rappel doit tomber dans les heures d'appel : {window.describe()}.")
    if when > now + CALLBACK_HORIZON:
        raise CallError(CALLBACK_TOO_FAR)


def log_outcome(
    registration: Registration,
    caller: User,
    data: Outcome,
    task: CallTask | None = None,
    now: datetime | None = None,
) -> Call:
    """Record the call and all its effects in one transaction, then free the lease."""
    now = now or utcnow()
    check(registration, caller, data, now)
    prospect = registration.prospect
    _release_lease(prospect, caller, now)
    call = Call(
        prospect_id=prospect.id,
        lab_id=registration.lab_id,
        registration_id=registration.id,
        caller_id=caller.id,
        outcome=data.outcome,
        notes=data.notes.strip(),
        callback_at=data.callback_at if data.outcome == "callback" else None,
        created_at=now,
    )
    db.session.add(call)
    _apply(registration, caller, data, now)
    _close_tasks(registration, task, data.outcome, now)
    _record_consents(prospect, caller, data)
    db.session.add(
        Event(
            kind="call.logged",
            actor_id=caller.id,
            prospect_id=prospect.id,
            lab_id=registration.lab_id,
            registration_id=registration.id,
            reason=call.notes,
            data={
                "outcome": data.outcome,
                "callback_at": call.callback_at.isoformat() if call.callback_at else None,
            },
        )
    )
    intents = INTENTS.get(data.outcome, [])
    if registration.status == "waitlisted":  # confirmed, but the lab is full
        intents = followups.STATUS_INTENTS["waitlisted"]
    followups.on_registration_change(registration, intents, caller, f"appel : {data.outcome}")
    db.session.commit()
    return call


def saved_message(registration: Registration, outcome: str) -> tuple[str, str]:
    """What the caller reads after logging (message, category): a full lab is said plainly,
    since the person is still on the line or must be told."""
    if outcome == "confirmed" and registration.status == "waitlisted":
        rank = waitlist.rank(registration)
        return (
            f"Appel enregistré, mais l'open lab est complet : la personne est sur liste "
            f"d'attente (rang {rank}). Dites-lui qu'elle sera prévenue si une place se libère.",
            "warning",
        )
    return f"Appel enregistré : {CALL_OUTCOME_LABELS[outcome]}.", "success"


def _release_lease(prospect: Prospect, caller: User, now: datetime) -> None:
    """Free the person in the outcome's transaction, unless a colleague holds them now: the
    page may be older than a colleague's claim, so the check is the UPDATE itself."""
    result = db.session.execute(
        sa.update(Prospect)
        .where(
            Prospect.id == prospect.id,
            sa.or_(
                Prospect.leased_by_id.is_(None),
                Prospect.leased_by_id == caller.id,
                Prospect.leased_until < now,
            ),
        )
        .values(leased_by_id=None, leased_until=None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise CallError(
            "Un·e collègue est en train d'appeler cette personne : résultat non enregistré."
        )


def _apply(registration: Registration, caller: User, data: Outcome, now: datetime) -> None:
    target = target_status(data.outcome, registration.status)
    if target:
        try:
            registrations.transition(registration, target, caller, data.notes or "Appel")
        except registrations.LabFull as exc:
            raise CallError(str(exc)) from exc
    registration.last_call_at = now
    if data.outcome in REACHED_OUTCOMES and registration.reached_at is None:
        registration.reached_at = now
    retry = timedelta(hours=int(current_app.config["CALL_RETRY_HOURS"]))
    if data.outcome in ("no_answer", "voicemail"):
        registration.next_call_at = now + retry
    elif data.outcome == "interested":
        registration.next_call_at = now + INTERESTED_RECALL
    elif data.outcome == "callback" and data.callback_at:
        # The callback task serves the person first; this only catches a forgotten task.
        registration.next_call_at = data.callback_at + timedelta(days=1)
        call_queue.add_task(
            registration, "callback", data.notes.strip(), data.callback_at, created_by=caller
        )
    elif data.outcome == "wrong_number":
        prospect = registration.prospect
        prospect.phone_raw = f"{format_phone(prospect.phone)} (mauvais numéro)"
        prospect.phone = None
    elif data.outcome == "not_potential_user":
        prospects.qualify(registration.prospect, "no", data.reason, caller)


def _close_tasks(
    registration: Registration, task: CallTask | None, outcome: str, now: datetime
) -> None:
    """The served task is done; a final answer cancels every other open task."""
    query = sa.select(CallTask).where(
        CallTask.registration_id == registration.id, CallTask.status == "open"
    )
    for open_task in db.session.scalars(query):
        if task is not None and open_task.id == task.id:
            open_task.status, open_task.closed_at = "done", now
        elif outcome in ("confirmed", "declined", "not_potential_user", "wrong_number"):
            open_task.status, open_task.closed_at = "cancelled", now
        elif open_task.kind == "callback" and open_task.due_at <= now and outcome != "callback":
            open_task.status, open_task.closed_at = "done", now


def _record_consents(prospect: Prospect, caller: User, data: Outcome) -> None:
    basis = "Accord donné à l'oral pendant l'appel"
    for channel, agreed in (("sms", data.consent_sms), ("email", data.consent_email)):
        if agreed:
            prospects.set_permission(
                prospect, channel, True, "oral", caller, from_person=True, basis=basis
            )


def skip(registration: Registration, caller: User, task: CallTask | None = None) -> None:
    """The caller passes without calling: free the lease and serve the person later."""
    if not call_queue.holds_lease(registration.prospect, caller):
        return  # someone else's call, or an expired lease: nothing of ours to give back
    later = utcnow() + timedelta(hours=1)
    if task is not None and task.status == "open":
        task.due_at = later
    elif registration.call_bucket is not None:
        registration.next_call_at = later
    db.session.commit()
    call_queue.release(registration.prospect_id, caller)
