"""The registration status machine: the only place a registration changes status.

Every change writes an append-only Event (who, when, from, to, why).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from crm.extensions import db
from crm.models import Event, Lab, Prospect, Registration, User
from crm.models.registration import REGISTRATION_STATUS_LABELS, REGISTRATION_STATUSES
from crm.services import followups, waitlist
from crm.services.bulk_sql import bulk_insert, one_of
from crm.timeutil import to_local, utcnow

# Legal moves. Exits (declined, disqualified, cancelled) can be reopened by a new contact,
# since people change their minds. Anyone invited can turn up on the day ("attended", at
# check-in); a check-in made by mistake goes back to confirmed, and a no-show checked in late
# becomes attended.
TRANSITIONS: dict[str, frozenset[str]] = {
    "to_contact": frozenset(
        {
            "contacted",
            "interested",
            "confirmed",
            "declined",
            "disqualified",
            "cancelled",
            "waitlisted",
            "attended",
        }
    ),
    "contacted": frozenset(
        {
            "interested",
            "confirmed",
            "declined",
            "disqualified",
            "cancelled",
            "waitlisted",
            "attended",
        }
    ),
    "interested": frozenset(
        {
            "contacted",
            "confirmed",
            "declined",
            "disqualified",
            "cancelled",
            "waitlisted",
            "attended",
        }
    ),
    "confirmed": frozenset({"attended", "no_show", "declined", "cancelled", "disqualified"}),
    "waitlisted": frozenset({"confirmed", "declined", "cancelled", "disqualified", "attended"}),
    "declined": frozenset({"contacted", "interested", "confirmed", "attended"}),
    "cancelled": frozenset({"to_contact", "contacted", "interested", "confirmed", "attended"}),
    "disqualified": frozenset({"to_contact"}),
    "attended": frozenset({"confirmed"}),
    "no_show": frozenset({"attended"}),
}
# Not answered yet: the people callers call and invitations are sent to.
WAITING = frozenset({"to_contact", "contacted", "interested"})
PENDING = WAITING | {"waitlisted"}
# Which part of the callers' queue a status belongs to (see crm.services.call_queue).
CALL_BUCKETS = {"interested": 2, "to_contact": 3, "contacted": 3}


# Set on the lab day (check-in, closing the lab), never before.
LAB_DAY_STATUSES = frozenset({"attended", "no_show"})


class TransitionError(ValueError):
    """An illegal status change; the message is in French for the interface."""


class LabFull(TransitionError):
    """A waitlisted person cannot be confirmed: no place is free and they hold no offer."""

    def __init__(self, rank: int | None, offer_expired: bool) -> None:
        self.rank, self.offer_expired = rank, offer_expired
        where = f" (rang {rank})" if rank else ""
        why = (
            "le délai pour accepter la place proposée est dépassé"
            if offer_expired
            else "l'open lab est complet"
        )
        super().__init__(
            f"Confirmation impossible : {why}. La personne reste sur liste d'attente{where}."
        )


def check_transition(current: str, target: str) -> None:
    if target not in TRANSITIONS:
        raise TransitionError(f"Statut inconnu : {target}.")
    if target not in TRANSITIONS[current]:
        raise TransitionError(
            f"Impossible de passer de « {REGISTRATION_STATUS_LABELS[current]} » "
            f"à « {REGISTRATION_STATUS_LABELS[target]} »."
        )


def register(
    prospect: Prospect, lab: Lab, actor: User | None, reason: str = ""
) -> tuple[Registration, bool]:
    """The prospect's registration in the lab, created if missing: (registration, created)."""
    existing = db.session.scalar(
        sa.select(Registration).where(
            Registration.prospect_id == prospect.id, Registration.lab_id == lab.id
        )
    )
    if existing is not None:
        return existing, False
    registration = Registration(prospect_id=prospect.id, lab_id=lab.id, status="to_contact")
    db.session.add(registration)
    db.session.flush()
    _record(registration, actor, "registration.created", None, "to_contact", reason)
    followups.on_registration_created(registration)
    return registration, True


def register_many(
    lab_id: int,
    prospect_ids: list[int],
    actor_id: int | None,
    reason: str,
    data: dict[str, Any] | None = None,
    call_rank: int = 0,
) -> int:
    """register() for thousands of people at once (imports, attendees invited to the next
    lab): the same rows and events, written in bulk. `call_rank` orders them in the callers'
    queue (lower first). Returns how many registrations were created."""
    wanted = sorted(set(prospect_ids))
    in_lab = sa.select(Registration.prospect_id).where(
        Registration.lab_id == lab_id, one_of(Registration.prospect_id, wanted)
    )
    existing = set(db.session.scalars(in_lab))
    missing = [pid for pid in wanted if pid not in existing]
    if not missing:
        return 0
    rows = [
        {"prospect_id": pid, "lab_id": lab_id, "status": "to_contact", "call_rank": call_rank}
        for pid in missing
    ]
    bulk_insert(Registration.__table__, rows)
    created = sa.select(Registration.prospect_id, Registration.id).where(
        Registration.lab_id == lab_id, one_of(Registration.prospect_id, missing)
    )
    ids = {prospect_id: rid for prospect_id, rid in db.session.execute(created).all()}
    events = [
        {
            "kind": "registration.created",
            "actor_id": actor_id,
            "prospect_id": pid,
            "lab_id": lab_id,
            "registration_id": ids[pid],
            "from_status": None,
            "to_status": "to_contact",
            "reason": reason,
            "data": data or {},
        }
        for pid in missing
    ]
    bulk_insert(Event.__table__, events)
    followups.start_invitations_bulk(lab_id, list(ids.values()), utcnow())
    return len(missing)


def transition(
    registration: Registration, target: str, actor: User | None, reason: str = ""
) -> Registration:
    """Move the registration to `target` or raise TransitionError; the caller commits.

    A confirmation needs a place (crm.services.waitlist): without one the person goes to the
    waiting list instead (read `registration.status` afterwards), or, when already on it,
    LabFull is raised."""
    check_transition(registration.status, target)
    previous, now = registration.status, utcnow()
    if target == "confirmed":
        seat = waitlist.seat_for(registration, now)
        if seat.granted:
            waitlist.take_seat(registration, seat, now)
        elif previous == "waitlisted":
            offer = waitlist.last_offer(registration)
            # Past its deadline, an offer is over even before the dispatcher's pass says so.
            expired = offer is not None and (
                offer.status == "expired"
                or (
                    offer.status == "sent"
                    and offer.expires_at is not None
                    and offer.expires_at <= now
                )
            )
            raise LabFull(waitlist.rank(registration), expired)
        else:
            target = "waitlisted"
            reason = f"{reason} (open lab complet)" if reason else "Open lab complet"
    if target == "waitlisted":
        waitlist.join(registration, now)
    elif previous == "waitlisted":
        waitlist.leave(registration, now, reason or REGISTRATION_STATUS_LABELS[target])
    registration.status = target
    registration.call_bucket = CALL_BUCKETS.get(target)
    if registration.call_bucket is not None and registration.next_call_at is None:
        registration.next_call_at = now
    _record(registration, actor, "registration.status", previous, target, reason)
    return registration


def change_status(
    registration: Registration, target: str, actor: User | None, reason: str = ""
) -> Registration:
    """A status set by hand (prospect page), or a person's answer: the transition, then what
    it means for the follow-ups (reminders on confirmation, nothing more after a refusal).
    A confirmation may end on the waiting list (lab full). The caller commits."""
    previous = registration.status
    transition(registration, target, actor, reason)
    reached = registration.status
    followups.on_registration_change(
        registration,
        followups.STATUS_INTENTS.get(reached, []),
        actor,
        f"statut {REGISTRATION_STATUS_LABELS[previous]} → {REGISTRATION_STATUS_LABELS[reached]}",
    )
    return registration


def undo_check_in(registration: Registration, actor: User | None, reason: str) -> Registration:
    """A check-in tapped by mistake: back to the status the person had before it (confirmed,
    waitlisted, invited...), without taking a place they did not have. The caller commits."""
    if registration.status != "attended":
        raise TransitionError("Cette personne n'est pas enregistrée présente.")
    before = db.session.scalar(
        sa.select(Event.from_status)
        .where(
            Event.registration_id == registration.id,
            Event.kind == "registration.status",
            Event.to_status == "attended",
        )
        .order_by(Event.id.desc())
        .limit(1)
    )
    previous = before if before in TRANSITIONS and before != "attended" else "confirmed"
    registration.status = previous
    registration.call_bucket = CALL_BUCKETS.get(previous)
    _record(registration, actor, "registration.status", "attended", previous, reason)
    return registration


def lab_day_begun(lab: Lab, now: datetime) -> bool:
    """From the lab's day (local time) on, people can be marked present or absent."""
    return to_local(now).date() >= to_local(lab.starts_at).date()


def manual_targets(registration: Registration, now: datetime) -> list[str]:
    """The statuses a user may pick by hand for this registration now, in display order."""
    allowed = set(TRANSITIONS[registration.status])
    if not lab_day_begun(registration.lab, now):
        allowed -= LAB_DAY_STATUSES
    return [status for status in REGISTRATION_STATUSES if status in allowed]


def change_status_by_hand(
    registration: Registration, target: str, actor: User | None, reason: str = ""
) -> Registration:
    """change_status from the prospect page: present or absent only from the lab's day."""
    if target in LAB_DAY_STATUSES and not lab_day_begun(registration.lab, utcnow()):
        raise TransitionError(
            "Présent ou absent se note à partir du jour de l'open lab (page d'accueil du lab)."
        )
    return change_status(registration, target, actor, reason)


def _record(
    registration: Registration,
    actor: User | None,
    kind: str,
    from_status: str | None,
    to_status: str,
    reason: str,
) -> None:
    db.session.add(
        Event(
            kind=kind,
            actor_id=actor.id if actor else None,
            prospect_id=registration.prospect_id,
            lab_id=registration.lab_id,
            registration_id=registration.id,
            from_status=from_status,
            to_status=to_status,
            reason=reason,
            data={},  # set, like the events written with it: one INSERT for all of them
        )
    )
