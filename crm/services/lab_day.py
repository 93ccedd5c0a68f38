"""After the lab: closing it, inviting its attendees to the next lab of the series, and the
few motivated people the method expects to become the service's first real users.

Closing (`close`) marks the confirmed people who did not come as no-shows, cancels what was
still due for the lab (invitations, reminders, place offers), schedules the thank-you
sequence for everyone present and ends the lab. Attendees are registered in the next lab by
the job `workers.jobs.invite_to_next_lab` (`invite_attendees`), as soon as the lab is closed
and has a next lab: on closing, or later when a manager links the next lab. Registering is
idempotent (one registration per person and lab), so the job can run twice. The lab is
committed closed before the job is queued: when Redis cannot take it then, the dispatcher's
next pass queues it (`queue_missed_invitations`), so no attendee is left out. Returning
attendees come first in the callers' queue (call_rank RETURNING_RANK) and get the next
lab's invitation sequence like any new registration.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from crm.extensions import db
from crm.models import Event, FollowUp, Lab, PlaceOffer, Prospect, Registration, User
from crm.models.offer import HOLDING_STATUSES
from crm.services import followups, registrations, waitlist
from crm.services.permissions import managers_only
from crm.timeutil import utcnow

RETURNING_RANK = -1  # before everyone else (0) in the callers' queue
INVITE_JOB = "workers.jobs.invite_to_next_lab"
NO_SHOW_REASON = "Absent·e le jour du lab"
CLOSED_REASON = "L'open lab est terminé."
# A next lab people can still be registered in: not over, not closed.
INVITABLE_STATUSES = ("draft", "recruiting")


class LabDayError(ValueError):
    """The action is not possible now; the message is in French for the interface."""


@dataclass(frozen=True)
class Closing:
    no_shows: int
    thanked: int
    cancelled: int
    invitations_queued: bool


@managers_only
def close(lab: Lab, actor: User | None, now: datetime | None = None) -> Closing:
    """End the lab (it must have started): absent confirmed people become no-shows, every
    follow-up still due for it is cancelled, the present get the thank-you sequence. Commits,
    then queues the next-lab invitations when a next lab is linked."""
    now = now or utcnow()
    if now < lab.starts_at:
        raise LabDayError("L'open lab n'a pas encore commencé : il ne peut pas être clos.")
    if lab.status == "done":
        raise LabDayError("Cet open lab est déjà clos.")
    in_lab = sa.select(Registration.id).where(Registration.lab_id == lab.id)
    cancelled = followups.cancel_open_where(CLOSED_REASON, FollowUp.registration_id.in_(in_lab))
    _close_offers(lab, now)
    absent = db.session.scalars(
        sa.select(Registration).where(
            Registration.lab_id == lab.id, Registration.status == "confirmed"
        )
    ).all()
    for registration in absent:
        registrations.transition(registration, "no_show", actor, NO_SHOW_REASON)
    present = db.session.scalars(
        sa.select(Registration).where(
            Registration.lab_id == lab.id, Registration.status == "attended"
        )
    ).all()
    for registration in present:
        followups.start_thank_you(registration, now)
    lab.status = "done"
    db.session.add(
        Event(
            kind="lab.closed",
            actor_id=actor.id if actor else None,
            lab_id=lab.id,
            reason=f"{len(present)} présents, {len(absent)} absents",
            data={"present": len(present), "no_show": len(absent)},
        )
    )
    db.session.commit()
    return Closing(len(absent), len(present), cancelled, queue_invitations(lab))


def _close_offers(lab: Lab, now: datetime) -> None:
    offers = db.session.scalars(
        sa.select(PlaceOffer).where(
            PlaceOffer.lab_id == lab.id, PlaceOffer.status.in_(HOLDING_STATUSES)
        )
    )
    for offer in offers:
        offer.status, offer.closed_at, offer.reason = "cancelled", now, CLOSED_REASON


def queue_invitations(lab: Lab) -> bool:
    """Queue the job that registers the lab's attendees in its next lab, once the lab is
    closed and a next lab is linked; False when there is nothing to do yet."""
    from workers.queues import DEFAULT, enqueue_once

    if lab.status != "done" or lab.next_lab_id is None:
        return False
    job_id = f"next-lab-{lab.id}-{lab.next_lab_id}"
    try:
        # Already queued: running it again would change nothing anyway.
        enqueue_once(DEFAULT, INVITE_JOB, lab.id, job_id=job_id)
    except RedisError as exc:
        current_app.logger.warning("%s not queued (%s): the dispatcher will queue it", job_id, exc)
    return True


def queue_missed_invitations(now: datetime) -> int:
    """Queue the next-lab job of every closed lab whose attendees are not all registered in
    its next lab yet (Redis was down when the lab was closed or linked); run by the
    dispatcher's pass. Returns how many labs were concerned."""
    following = aliased(Lab)
    again = aliased(Registration)
    missing = _attendees_to_invite(Lab.id).where(
        ~sa.exists().where(
            again.lab_id == Lab.next_lab_id, again.prospect_id == Registration.prospect_id
        )
    )
    labs = list(
        db.session.scalars(
            sa.select(Lab)
            .join(following, following.id == Lab.next_lab_id)
            .where(
                Lab.status == "done",
                following.starts_at > now,
                following.status.in_(INVITABLE_STATUSES),
                missing.exists(),
            )
        )
    )
    for lab in labs:
        queue_invitations(lab)
    return len(labs)


def next_lab_candidates(lab: Lab) -> list[Lab]:
    """Labs that can follow this one: starting after it ends, still to be recruited for."""
    query = (
        sa.select(Lab)
        .where(
            Lab.id != lab.id,
            Lab.starts_at > lab.ends_at,
            Lab.status.in_(INVITABLE_STATUSES),
        )
        .order_by(Lab.starts_at)
    )
    return list(db.session.scalars(query))


@managers_only
def link_next(lab: Lab, next_lab_id: int, actor: User) -> Lab:
    """Make `next_lab_id` the next lab of the series (the caller commits, then calls
    queue_invitations)."""
    candidate = db.session.get(Lab, next_lab_id)
    if candidate is None or candidate.id not in {c.id for c in next_lab_candidates(lab)}:
        raise LabDayError(
            "Choisissez un open lab qui a lieu après celui-ci et dont le recrutement "
            "n'est pas terminé."
        )
    lab.next_lab_id = candidate.id
    db.session.add(
        Event(
            kind="lab.next_lab",
            actor_id=actor.id,
            lab_id=lab.id,
            reason=f"Open lab suivant : « {candidate.title} »",
            data={"next_lab_id": candidate.id},
        )
    )
    return candidate


def returning_count(lab: Lab) -> int:
    """How many of this lab's attendees are registered in its next lab."""
    if lab.next_lab_id is None:
        return 0
    attendees = sa.select(Registration.prospect_id).where(
        Registration.lab_id == lab.id, Registration.status == "attended"
    )
    return int(
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Registration)
            .where(
                Registration.lab_id == lab.next_lab_id,
                Registration.prospect_id.in_(attendees),
            )
        )
        or 0
    )


def attendees(lab: Lab) -> list[Registration]:
    return list(
        db.session.scalars(
            sa.select(Registration)
            .join(Prospect, Prospect.id == Registration.prospect_id)
            .where(Registration.lab_id == lab.id, Registration.status == "attended")
            .order_by(Prospect.last_name, Prospect.first_name, Registration.id)
        )
    )


def invite_attendees(lab_id: int) -> int:
    """Register the lab's attendees in its next lab (when it is still to come); returns how
    many registrations were created. Safe to run twice, even at the same time."""
    for attempt in range(2):
        try:
            created = _invite(lab_id)
            db.session.commit()
            return created
        except IntegrityError:
            db.session.rollback()  # a parallel run registered some of them first
            if attempt:
                raise
    return 0


def _next_lab_open(lab: Lab) -> Lab | None:
    """The lab's next lab when attendees can still be registered in it."""
    following = lab.next_lab
    if following is None or following.starts_at <= utcnow():
        return None
    return following if following.status in INVITABLE_STATUSES else None


def invite_late_attendee(registration: Registration, actor: User | None) -> bool:
    """Someone checked in after the lab was closed: registered in the next lab like the
    others (the closing's job ran without them). The caller commits."""
    lab = registration.lab
    next_lab = _next_lab_open(lab)
    if next_lab is None or registration.prospect.qualification == "no":
        return False
    again, created = registrations.register(
        registration.prospect, next_lab, actor, f"A participé à « {lab.title} »"
    )
    if created:
        again.call_rank = RETURNING_RANK
    return created


def _attendees_to_invite(lab_id: Any) -> sa.Select[tuple[int]]:
    """The people present at a lab who are invited to its next one: everyone but those
    found out of scope since (a lab id, or a column to correlate with)."""
    return (
        sa.select(Registration.prospect_id)
        .join(Prospect, Prospect.id == Registration.prospect_id)
        .where(
            Registration.lab_id == lab_id,
            Registration.status == "attended",
            Prospect.qualification != "no",
        )
    )


def _invite(lab_id: int) -> int:
    lab = db.session.get(Lab, lab_id)
    next_lab = _next_lab_open(lab) if lab is not None and lab.status == "done" else None
    if next_lab is None:
        return 0
    # A parallel run waits here on PostgreSQL, then sees what the first one registered.
    waitlist.lock_lab(next_lab.id)
    attendees = db.session.scalars(_attendees_to_invite(lab.id)).all()
    return registrations.register_many(
        next_lab.id,
        list(attendees),
        None,
        f"A participé à « {lab.title} »",
        {"from_lab_id": lab.id},
        call_rank=RETURNING_RANK,
    )


# --- Motivated and active users ---------------------------------------------------------------


def _attendee(registration: Registration) -> Prospect:
    if registration.status != "attended":
        raise LabDayError("Seules les personnes présentes au lab peuvent être signalées ainsi.")
    return registration.prospect


@managers_only
def flag_motivated(registration: Registration, actor: User, motivated: bool) -> bool:
    """Flag (or unflag) an attendee as a motivated user, one of the few who will work closely
    with the team; False when nothing changed."""
    return _set_flag(registration, actor, "motivated_at", "prospect.motivated", motivated)


@managers_only
def mark_active_user(registration: Registration, actor: User, active: bool) -> bool:
    """Record that the attendee became (or is no longer) an active user of the service: the
    method's "one in ten" is measured with it."""
    return _set_flag(registration, actor, "active_user_at", "prospect.active_user", active)


def _set_flag(registration: Registration, actor: User, column: str, kind: str, on: bool) -> bool:
    prospect = _attendee(registration)
    if on == (getattr(prospect, column) is not None):
        return False
    setattr(prospect, column, utcnow() if on else None)
    _flag_event(registration, actor, kind, on)
    return True


def _flag_event(registration: Registration, actor: User, kind: str, on: bool) -> None:
    db.session.add(
        Event(
            kind=kind,
            actor_id=actor.id,
            prospect_id=registration.prospect_id,
            lab_id=registration.lab_id,
            registration_id=registration.id,
            reason="Oui" if on else "Retiré",
            data={"on": on},
        )
    )
