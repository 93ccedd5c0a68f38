"""Capacity and the waiting list: who gets a place, in what order, and offers of a freed place.

A lab takes up to `capacity + overbooking` people (the margin covers the usual no-shows).
Places are taken by the confirmed people (labs.CONFIRMED_STATUSES) and by the offers still
holding one (a freed place offered to someone on the waiting list, valid `offer_hours`).
A confirmation when nothing is free puts the person on the waiting list, ranked by the time
they got there. The dispatcher's pass (`tick`) expires unanswered offers and offers every
free place to the next person: the fewest offers so far first, then the waiting-list rank,
at most MAX_OFFERS times per person and lab. Sending an offer is crm.services.offer_sending.

Functions change the session only unless they say so; the caller commits. On PostgreSQL the
lab row is locked while places are counted, so two confirmations cannot take the last place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from crm.extensions import db
from crm.models import Event, Lab, PlaceOffer, Prospect, Registration
from crm.models.offer import HOLDING_STATUSES
from crm.services import labs
from crm.timeutil import format_local, utcnow

MAX_OFFERS = 3
EXPIRED_REASON = "Pas de réponse dans le délai : la place est proposée à la personne suivante."


def places(lab: Lab) -> int:
    """How many people the lab confirms: its capacity plus the overbooking margin."""
    return lab.capacity + lab.overbooking


def lock_lab(lab_id: int) -> None:
    """Serialise work on one lab's registrations on PostgreSQL (place counting, bulk
    registration) until the transaction ends; SQLite serialises every write anyway.
    FOR NO KEY UPDATE, not FOR UPDATE: it still excludes another lock_lab, but not the
    key-share lock every insert referencing the lab takes (events, tasks...), which would
    otherwise wait for this transaction and could deadlock with it."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            sa.select(Lab.id).where(Lab.id == lab_id).with_for_update(key_share=True)
        )


def taken_expression(lab_id: int | sa.ColumnElement[int]) -> sa.ColumnElement[int]:
    """Places taken, as one SQL expression (a query may embed it with other columns; the
    lab's id may be a bound parameter)."""
    confirmed = (
        sa.select(sa.func.count())
        .select_from(Registration)
        .where(Registration.lab_id == lab_id, Registration.status.in_(labs.CONFIRMED_STATUSES))
        .scalar_subquery()
    )
    held = (
        sa.select(sa.func.count())
        .select_from(PlaceOffer)
        .where(PlaceOffer.lab_id == lab_id, PlaceOffer.status.in_(HOLDING_STATUSES))
        .scalar_subquery()
    )
    return confirmed + held


def taken(lab_id: int) -> int:
    """Places taken: confirmed people plus offers still holding a place (one query)."""
    return int(db.session.scalar(sa.select(taken_expression(lab_id))) or 0)


def free_places(lab: Lab, taken_places: int | None = None) -> int:
    """Places left; `taken_places` when the caller already counted them (`taken_expression`)."""
    if taken_places is None:
        taken_places = taken(lab.id)
    return max(places(lab) - taken_places, 0)


def holding_offer(registration: Registration, now: datetime) -> PlaceOffer | None:
    """The offer that keeps a place for this person right now, if any."""
    if not registration.offers_made:  # never offered a place (fill counts every offer)
        return None
    offer = db.session.scalar(
        sa.select(PlaceOffer).where(
            PlaceOffer.registration_id == registration.id,
            PlaceOffer.status.in_(HOLDING_STATUSES),
        )
    )
    if offer is None or (offer.expires_at is not None and offer.expires_at <= now):
        return None
    return offer


def last_offer(registration: Registration) -> PlaceOffer | None:
    if not registration.offers_made:
        return None
    return db.session.scalar(
        sa.select(PlaceOffer)
        .where(PlaceOffer.registration_id == registration.id)
        .order_by(PlaceOffer.number.desc())
        .limit(1)
    )


@dataclass(frozen=True)
class Seat:
    """The answer to "may this person be confirmed now?"."""

    granted: bool
    offer: PlaceOffer | None = None


def seat_for(registration: Registration, now: datetime) -> Seat:
    """A place for this confirmation: the person's own offer, or a free place. A freed place
    belongs to the waiting list first (the dispatcher's next pass offers it): someone else
    gets one only beyond the places the next people in line can be offered. Already
    confirmed people keep theirs."""
    if registration.status in labs.CONFIRMED_STATUSES:
        return Seat(True)  # their own place (a check-in undone goes back to confirmed)
    offer = holding_offer(registration, now)
    if offer is not None:
        return Seat(True, offer)
    lock_lab(registration.lab_id)
    lab = registration.lab
    # Places taken and people in line (counted up to the lab's size, no more can matter) in
    # one query: someone not in line gets a place only beyond those the line can be offered.
    waiting = _in_line(lab.id).with_only_columns(Registration.id).limit(places(lab)).subquery()
    taken_places, in_line_count = db.session.execute(
        sa.select(
            taken_expression(lab.id),
            sa.select(sa.func.count()).select_from(waiting).scalar_subquery(),
        )
    ).one()
    free = free_places(lab, taken_places)
    if free <= 0:
        return Seat(False)
    if registration.status != "waitlisted":
        return Seat(free > in_line_count)
    in_line = candidates(registration.lab_id, free)
    if any(person.id == registration.id for person in in_line):
        return Seat(True)
    return Seat(free > len(in_line))


def take_seat(registration: Registration, seat: Seat, now: datetime) -> None:
    """The person is confirmed: their offer is accepted."""
    if seat.offer is not None:
        seat.offer.status, seat.offer.closed_at = "accepted", now


def join(registration: Registration, now: datetime) -> None:
    """The person goes to the end of the waiting list (their rank counts from now)."""
    registration.waitlisted_at = now


def leave(registration: Registration, now: datetime, reason: str) -> None:
    """The person leaves the waiting list (declined, cancelled...): an offer they still hold
    is cancelled, so the next pass offers the place to someone else."""
    offer = holding_offer(registration, now)
    if offer is not None:
        offer.status, offer.closed_at, offer.reason = "cancelled", now, reason


def rank(registration: Registration) -> int | None:
    """1 for the first person on the lab's waiting list; None when not on it."""
    if registration.status != "waitlisted" or registration.waitlisted_at is None:
        return None
    ahead = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Registration)
        .where(
            Registration.lab_id == registration.lab_id,
            Registration.status == "waitlisted",
            sa.tuple_(Registration.waitlisted_at, Registration.id)
            < sa.tuple_(registration.waitlisted_at, registration.id),
        )
    )
    return int(ahead or 0) + 1


def waiting_list(lab_id: int) -> list[Registration]:
    """The lab's waiting list in rank order."""
    return list(
        db.session.scalars(
            sa.select(Registration)
            .where(Registration.lab_id == lab_id, Registration.status == "waitlisted")
            .order_by(Registration.waitlisted_at, Registration.id)
        )
    )


def offers_for(lab_id: int) -> list[PlaceOffer]:
    return list(
        db.session.scalars(
            sa.select(PlaceOffer)
            .where(PlaceOffer.lab_id == lab_id)
            .order_by(PlaceOffer.created_at.desc(), PlaceOffer.id.desc())
        )
    )


# --- The dispatcher's pass ------------------------------------------------------------------


def tick(now: datetime | None = None) -> dict[str, int]:
    """Expire unanswered offers, then offer every free place of the labs still to come;
    commits. Returns the counts for the dispatcher's report."""
    now = now or utcnow()
    expired = expire_offers(now)
    db.session.commit()
    offered = 0
    for lab_id in _labs_with_waiting_list(now):
        offered += fill(db.session.get(Lab, lab_id), now)
        db.session.commit()
    return {"offers_expired": expired, "offers_made": offered}


def expire_offers(now: datetime) -> int:
    """Sent offers past their deadline expire; offers of a lab that has started are cancelled."""
    overdue = db.session.scalars(
        sa.select(PlaceOffer).where(PlaceOffer.status == "sent", PlaceOffer.expires_at <= now)
    ).all()
    for offer in overdue:
        offer.status, offer.closed_at, offer.reason = "expired", now, EXPIRED_REASON
        record(offer, "waitlist.offer_expired", EXPIRED_REASON)
    started = db.session.scalars(
        sa.select(PlaceOffer)
        .join(Lab, Lab.id == PlaceOffer.lab_id)
        .where(PlaceOffer.status == "scheduled", Lab.starts_at <= now)
    ).all()
    for offer in started:
        offer.status, offer.closed_at = "cancelled", now
        offer.reason = "L'open lab a commencé avant l'envoi de la proposition."
    return len(overdue)


def _labs_with_waiting_list(now: datetime) -> list[int]:
    query = (
        sa.select(Lab.id)
        .where(
            Lab.starts_at > now,
            Lab.status.in_(("recruiting", "closed")),
            sa.exists().where(Registration.lab_id == Lab.id, Registration.status == "waitlisted"),
        )
        .order_by(Lab.starts_at)
    )
    return list(db.session.scalars(query))


def _in_line(lab_id: int) -> sa.Select[tuple[Registration]]:
    """The people a place can be offered to, in no order (see `candidates`)."""
    holding = sa.select(PlaceOffer.registration_id).where(
        PlaceOffer.lab_id == lab_id, PlaceOffer.status.in_(HOLDING_STATUSES)
    )
    return (
        sa.select(Registration)
        .join(Prospect, Prospect.id == Registration.prospect_id)
        .where(
            Registration.lab_id == lab_id,
            Registration.status == "waitlisted",
            Registration.offers_made < MAX_OFFERS,
            Registration.id.not_in(holding),
            sa.or_(Prospect.can_get_sms, Prospect.can_get_email),  # an offer must reach them
        )
    )


def candidates(lab_id: int, limit: int) -> list[Registration]:
    """The next people to offer a place to: fewest offers first, then rank; never someone
    who holds an offer, reached MAX_OFFERS, or cannot be told."""
    query = (
        _in_line(lab_id)
        .order_by(Registration.offers_made, Registration.waitlisted_at, Registration.id)
        .limit(limit)
    )
    return list(db.session.scalars(query))


def fill(lab: Lab, now: datetime) -> int:
    """Offer each free place of the lab to the next candidate; returns the offers made."""
    lock_lab(lab.id)
    free = free_places(lab)
    if free <= 0:
        return 0
    made = 0
    for registration in candidates(lab.id, free):
        registration.offers_made += 1
        offer = PlaceOffer(
            registration_id=registration.id,
            lab_id=lab.id,
            number=registration.offers_made,
            status="scheduled",
            created_at=now,
        )
        db.session.add(offer)
        db.session.flush()
        record(offer, "waitlist.offer", f"Place libérée proposée (proposition {offer.number}).")
        made += 1
    return made


def deadline(lab: Lab, sent_at: datetime) -> datetime:
    """When an offer sent now stops holding the place: `offer_hours` later, and never after
    the lab starts."""
    return min(sent_at + timedelta(hours=lab.offer_hours), lab.starts_at)


def describe_deadline(offer: PlaceOffer) -> str:
    return format_local(offer.expires_at, with_day=True) if offer.expires_at else ""


def record(offer: PlaceOffer, kind: str, reason: str) -> None:
    """An event on the person's timeline about this offer."""
    registration = offer.registration or db.session.get(Registration, offer.registration_id)
    db.session.add(
        Event(
            kind=kind,
            prospect_id=registration.prospect_id,
            lab_id=offer.lab_id,
            registration_id=offer.registration_id,
            reason=reason,
            data={"offer_id": offer.id, "number": offer.number},
        )
    )
