"""What a lab's page shows: confirmed against target and places, people per status, the
waiting list with its offers, and the previous lab's no-show rate (a hint for the
overbooking margin). Read-only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import contains_eager, joinedload

from crm.extensions import db
from crm.models import Lab, PlaceOffer, Prospect, Registration
from crm.models.offer import HOLDING_STATUSES
from crm.models.registration import REGISTRATION_STATUS_LABELS, REGISTRATION_STATUSES
from crm.services import waitlist
from crm.services.labs import CONFIRMED_STATUSES, status_counts
from crm.timeutil import format_local, utcnow

# The lab page lists the latest offers only; the person's timeline keeps them all.
RECENT_OFFERS = 20


@dataclass
class Gauge:
    """Confirmed participants against a target or a capacity, for an accessible display."""

    value: int
    maximum: int

    @property
    def percent(self) -> int:
        return round(100 * self.value / self.maximum) if self.maximum else 0

    @property
    def bar_value(self) -> int:
        return min(self.value, self.maximum)

    @property
    def remaining(self) -> int:
        return max(self.maximum - self.value, 0)

    @property
    def over(self) -> int:
        return max(self.value - self.maximum, 0)


@dataclass
class StatusGroup:
    status: str
    label: str
    count: int
    registrations: list[Registration] = field(default_factory=list)


@dataclass
class LabOverview:
    counts: dict[str, int]
    groups: list[StatusGroup]
    confirmed: int
    total: int
    target: Gauge
    # Places taken (confirmed people and offers holding a place) against capacity + margin.
    capacity: Gauge
    held: int = 0


def lab_overview(lab: Lab, per_status: int = 100) -> LabOverview:
    """Counts per status and the first `per_status` people of every non-empty status."""
    counts = status_counts(lab.id)
    groups = []
    for status in REGISTRATION_STATUSES:
        if not counts[status]:
            continue
        query = (
            sa.select(Registration)
            .join(Prospect, Prospect.id == Registration.prospect_id)
            .where(Registration.lab_id == lab.id, Registration.status == status)
            .options(contains_eager(Registration.prospect))
            .order_by(Prospect.last_name, Prospect.first_name, Prospect.id)
            .limit(per_status)
        )
        groups.append(
            StatusGroup(
                status,
                REGISTRATION_STATUS_LABELS[status],
                counts[status],
                list(db.session.scalars(query)),
            )
        )
    confirmed = sum(counts[s] for s in CONFIRMED_STATUSES)
    # The same count as the confirmations use, so the page and the waiting list agree.
    taken = waitlist.taken(lab.id)
    return LabOverview(
        counts=counts,
        groups=groups,
        confirmed=confirmed,
        total=sum(counts.values()),
        target=Gauge(confirmed, lab.target),
        capacity=Gauge(taken, waitlist.places(lab)),
        held=max(taken - confirmed, 0),
    )


@dataclass
class NoShowRate:
    """What the previous lab of the series observed: confirmed people who did not come."""

    lab: Lab
    no_show: int
    seen: int  # attended + no_show: the confirmed people checked on the day

    @property
    def percent(self) -> int:
        return round(100 * self.no_show / self.seen) if self.seen else 0

    def suggested_margin(self, capacity: int) -> int:
        """The margin that, at this rate, fills the capacity: N with (capacity + N) × rate ≈ N."""
        if self.no_show >= self.seen:
            return capacity
        return min(round(capacity * self.no_show / (self.seen - self.no_show)), capacity)


def previous_no_show_rate(lab: Lab, now: datetime | None = None) -> NoShowRate | None:
    """The no-show rate of the latest past lab whose next lab is this one, counted on the
    people marked present or absent; None when there is no such lab or nobody was marked."""
    if lab.id is None:
        return None
    now = now or utcnow()
    no_show = sa.func.sum(sa.case((Registration.status == "no_show", 1), else_=0))
    row = db.session.execute(
        sa.select(Lab.id, no_show, sa.func.count())
        .join(Registration, Registration.lab_id == Lab.id)
        .where(
            Lab.next_lab_id == lab.id,
            Lab.starts_at <= now,
            Registration.status.in_(("attended", "no_show")),
        )
        .group_by(Lab.id, Lab.starts_at)
        .order_by(Lab.starts_at.desc(), Lab.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    previous = db.session.get(Lab, row[0])
    assert previous is not None
    return NoShowRate(previous, int(row[1] or 0), int(row[2]))


def no_show_hint(lab: Lab) -> str | None:
    """The sentence shown under the overbooking field, from the previous lab's figures."""
    rate = previous_no_show_rate(lab)
    if rate is None:
        return None
    margin = rate.suggested_margin(lab.capacity)
    return (
        f"Au lab précédent, {rate.percent} % des confirmés ne sont pas venus "
        f"({rate.no_show} sur {rate.seen}, « {rate.lab.title} » du "
        f"{format_local(rate.lab.starts_at).rsplit(' à ', 1)[0]}). "
        f"Pour {lab.capacity} places, une marge de {margin} compenserait un taux semblable."
    )


@dataclass
class WaitingPerson:
    rank: int
    registration: Registration
    offer: PlaceOffer | None  # the latest offer made to the person, if any

    @property
    def holds_place(self) -> bool:
        return self.offer is not None and self.offer.status in HOLDING_STATUSES


@dataclass
class WaitlistOverview:
    people: list[WaitingPerson]
    offers: list[PlaceOffer]  # the latest RECENT_OFFERS, newest first
    offer_count: int
    max_offers: int

    def __bool__(self) -> bool:
        return bool(self.people or self.offers)


def waitlist_overview(lab: Lab) -> WaitlistOverview:
    """The waiting list in rank order with each person's latest offer, and the recent offers."""
    people = waitlist.waiting_list(lab.id)
    offers = waitlist.offers_for(lab.id)
    latest: dict[int, PlaceOffer] = {}
    for offer in offers:  # newest first: keep the first seen per person
        latest.setdefault(offer.registration_id, offer)
    _load_people({r.id for r in people} | set(latest))
    return WaitlistOverview(
        people=[WaitingPerson(i, r, latest.get(r.id)) for i, r in enumerate(people, start=1)],
        offers=offers[:RECENT_OFFERS],
        offer_count=len(offers),
        max_offers=waitlist.MAX_OFFERS,
    )


def _load_people(registration_ids: set[int]) -> None:
    """One query for the registrations and prospects the page shows (no query per row)."""
    if registration_ids:
        db.session.scalars(
            sa.select(Registration)
            .where(Registration.id.in_(registration_ids))
            .options(joinedload(Registration.prospect))
        ).all()
