"""The target forecast of a lab: how many of its confirmed people will come, against the
target and the places, what to do when it falls short, and its confirmations over time.

- A source's no-show rate: no_show / (attended + no_show) of its prospects in past labs (started
  before the forecast's moment: present or absent are final there); with fewer than
  MIN_HISTORY people seen, the default rate, and `from_history` is False.
- Expected participants: people checked in (they came) + Σ per source still-confirmed people
  × (1 − the source's rate); before the lab day, "confirmed × (1 − rate)".
- A source's conversion: (confirmed + attended + no_show) / registrations in past labs, for
  sources with at least MIN_HISTORY registrations (others: unknown, called last).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask import current_app, has_app_context
from sqlalchemy.orm import contains_eager

from crm.extensions import db
from crm.models import Event, Lab, Prospect, Registration, Source
from crm.services import waitlist
from crm.services.labs import CONFIRMED_STATUSES
from crm.services.registrations import WAITING
from crm.timeutil import to_local, utcnow

# A common no-show rate for free events (one registered person in five does not come); used
# for a source with too little history. The FORECAST_DEFAULT_NO_SHOW setting overrides it.
DEFAULT_NO_SHOW_RATE = 0.2
# People seen on the day (present or absent) a source needs before its own rate is used;
# also the registrations it needs before its conversion rate ranks the people to call.
MIN_HISTORY = 10
# Still expected to come (confirmed) or already there (attended).
EXPECTED_STATUSES = ("confirmed", "attended")
_SEEN_STATUSES = ("attended", "no_show")


def default_no_show_rate() -> float:
    if has_app_context():
        return float(current_app.config.get("FORECAST_DEFAULT_NO_SHOW", DEFAULT_NO_SHOW_RATE))
    return DEFAULT_NO_SHOW_RATE


@dataclass(frozen=True)
class SourceRate:
    source_id: int
    name: str
    seen: int  # past people marked present or absent
    no_shows: int
    rate: float  # the rate the forecast uses: the source's own, or the default
    from_history: bool  # False: fewer than MIN_HISTORY people seen, the default is used


def source_no_show_rates(before: datetime) -> dict[int, SourceRate]:
    """Every source's no-show rate over the labs that started before `before` (one query)."""
    no_show = sa.func.sum(sa.case((Registration.status == "no_show", 1), else_=0))
    seen = (
        sa.select(
            Prospect.source_id.label("source_id"),
            sa.func.count().label("seen"),
            no_show.label("no_shows"),
        )
        .join(Registration, Registration.prospect_id == Prospect.id)
        .join(Lab, Lab.id == Registration.lab_id)
        .where(Lab.starts_at < before, Registration.status.in_(_SEEN_STATUSES))
        .group_by(Prospect.source_id)
        .subquery()
    )
    rows = db.session.execute(
        sa.select(Source.id, Source.name, seen.c.seen, seen.c.no_shows).outerjoin(
            seen, seen.c.source_id == Source.id
        )
    ).all()
    default = default_no_show_rate()
    rates = {}
    for source_id, name, seen_count, no_shows in rows:  # one row per source: few
        seen_count, no_shows = int(seen_count or 0), int(no_shows or 0)
        own = seen_count >= MIN_HISTORY
        rate = no_shows / seen_count if own else default
        rates[source_id] = SourceRate(source_id, name, seen_count, no_shows, rate, own)
    return rates


def source_conversion(before: datetime) -> dict[int, float]:
    """Per source with at least MIN_HISTORY registrations in labs started before `before`:
    the share that got to confirmed or beyond (one grouped query)."""
    beyond = sa.func.sum(sa.case((Registration.status.in_(CONFIRMED_STATUSES), 1), else_=0))
    rows = db.session.execute(
        sa.select(Prospect.source_id, beyond, sa.func.count())
        .join(Registration, Registration.prospect_id == Prospect.id)
        .join(Lab, Lab.id == Registration.lab_id)
        .where(Lab.starts_at < before)
        .group_by(Prospect.source_id)
        .having(sa.func.count() >= MIN_HISTORY)
    ).all()
    return {source_id: int(done or 0) / int(total) for source_id, done, total in rows}


@dataclass(frozen=True)
class SourceForecast:
    source_id: int
    name: str
    confirmed: int  # confirmed + attended
    attended: int
    rate: float
    from_history: bool
    expected: float


@dataclass
class Forecast:
    lab: Lab
    confirmed: int  # confirmed + attended
    expected: float
    expected_rounded: int  # rounded down
    target: int
    capacity: int  # places: capacity + overbooking
    days_left: int  # calendar days in Paris until the lab's day, 0 once it has started
    short_by: int  # target − expected, rounded up, 0 when on track
    needed_confirmations: int  # more confirmations that bring the expected count to target
    show_rate: float  # expected share of a new confirmation that comes
    on_track: bool
    default_rate: float
    uses_default: bool  # some confirmed people's source has too little history
    by_source: list[SourceForecast] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """'Prévision : 27 participants attendus pour un objectif de 30, dans 12 jours. Il
        manque environ 4 confirmations.'"""
        n = self.expected_rounded
        text = (
            f"Prévision : {n} participant{_s(n)} attendu{_s(n)} pour un objectif de "
            f"{self.target}, {_when(self.days_left)}."
        )
        if self.on_track:
            return f"{text} L'objectif devrait être atteint."
        k = self.needed_confirmations
        return f"{text} Il manque environ {k} confirmation{_s(k)}."


def _s(n: int) -> str:
    return "s" if n > 1 else ""


def _when(days: int) -> str:
    return {0: "aujourd'hui", 1: "demain"}.get(days, f"dans {days} jours")


def days_left(lab: Lab, now: datetime) -> int:
    """Calendar days in Paris time until the lab's day; 0 on the day and once started."""
    if now >= lab.starts_at:
        return 0
    start, today = to_local(lab.starts_at), to_local(now)
    assert start is not None and today is not None
    return max((start.date() - today.date()).days, 0)


def _lab_sources(lab: Lab, rates: dict[int, SourceRate]) -> list[SourceForecast]:
    """The lab's confirmed and attended people per source, biggest first (one query)."""
    attended = sa.func.sum(sa.case((Registration.status == "attended", 1), else_=0))
    rows = db.session.execute(
        sa.select(Prospect.source_id, sa.func.count(), attended)
        .join(Prospect, Prospect.id == Registration.prospect_id)
        .where(Registration.lab_id == lab.id, Registration.status.in_(EXPECTED_STATUSES))
        .group_by(Prospect.source_id)
    ).all()
    result = []
    for source_id, count, present in rows:  # one row per source
        r, count, present = rates[source_id], int(count), int(present or 0)
        expected = present + (count - present) * (1 - r.rate)
        result.append(
            SourceForecast(source_id, r.name, count, present, r.rate, r.from_history, expected)
        )
    return sorted(result, key=lambda row: (-row.confirmed, row.name))


def forecast(lab: Lab, now: datetime | None = None) -> Forecast:
    """The lab's forecast, with the sources' history up to now (or the lab's start)."""
    now = now or utcnow()
    by_source = _lab_sources(lab, source_no_show_rates(min(now, lab.starts_at)))
    default = default_no_show_rate()
    expected = sum((row.expected for row in by_source), 0.0)
    # New confirmations are expected to come like the lab's still-confirmed people.
    pending = sum(row.confirmed - row.attended for row in by_source)
    pending_expected = sum(row.expected - row.attended for row in by_source)
    show_rate = pending_expected / pending if pending else 1 - default
    if show_rate <= 0:
        show_rate = 1 - default
    short = max(round(lab.target - expected, 6), 0.0)  # 29.9999999 is 30
    return Forecast(
        lab=lab,
        confirmed=sum(row.confirmed for row in by_source),
        expected=expected,
        expected_rounded=math.floor(round(expected, 6)),
        target=lab.target,
        capacity=waitlist.places(lab),
        days_left=days_left(lab, now),
        short_by=math.ceil(short),
        needed_confirmations=math.ceil(round(short / show_rate, 6)) if short else 0,
        show_rate=show_rate,
        on_track=short == 0,
        default_rate=default,
        uses_default=any(not row.from_history for row in by_source),
        by_source=by_source,
    )


def to_call_first(lab: Lab, limit: int = 20, now: datetime | None = None) -> list[Registration]:
    """The lab's people not reached yet, best-converting source first (unknown sources last),
    then the oldest registration; prospect and source loaded (one query)."""
    now = now or utcnow()
    conversion = source_conversion(min(now, lab.starts_at))
    rank = (
        sa.case(conversion, value=Prospect.source_id, else_=-1.0)
        if conversion
        else sa.literal(-1.0)
    )
    query = (
        sa.select(Registration)
        .join(Prospect, Prospect.id == Registration.prospect_id)
        .join(Source, Source.id == Prospect.source_id)
        .where(
            Registration.lab_id == lab.id,
            Registration.status.in_(sorted(WAITING)),
            Registration.reached_at.is_(None),
            Prospect.qualification != "no",
        )
        .options(contains_eager(Registration.prospect).contains_eager(Prospect.source))
        .order_by(rank.desc(), Registration.created_at, Registration.id)
        .limit(limit)
    )
    return list(db.session.scalars(query))


def confirmations_over_time(lab: Lab, now: datetime | None = None) -> list[tuple[date, int]]:
    """Per Paris day, the lab's registrations whose status at the end of the day was
    confirmed, attended or no_show, read from the status events: a person who confirms, then
    declines, then confirms again counts once, from the last confirmation on. One point per
    day from the first confirmation to the lab's day (or today, or the last change if later).

    One query returns only the events that move someone in or out of that set, with +1/−1;
    they are few per lab, and summed per local day here (SQLite has no time zones)."""
    now = now or utcnow()
    inside = Event.to_status.in_(CONFIRMED_STATUSES)
    was_inside = sa.and_(Event.from_status.is_not(None), Event.from_status.in_(CONFIRMED_STATUSES))
    delta = sa.case((sa.and_(inside, ~was_inside), 1), (sa.and_(~inside, was_inside), -1), else_=0)
    rows = db.session.execute(
        sa.select(Event.created_at, delta)
        .where(
            Event.lab_id == lab.id,
            Event.kind.in_(("registration.created", "registration.status")),
            Event.to_status.is_not(None),
            delta != 0,
        )
        .order_by(Event.created_at, Event.id)
    ).all()
    if not rows:
        return []
    per_day: dict[date, int] = defaultdict(int)
    for created_at, change in rows:
        local = to_local(created_at)
        assert local is not None
        per_day[local.date()] += int(change)
    first, last = min(per_day), max(per_day)
    lab_day, today = to_local(lab.starts_at), to_local(now)
    assert lab_day is not None and today is not None
    last = max(last, min(lab_day.date(), today.date()))
    series, total, day = [], 0, first
    while day <= last:
        total += per_day.get(day, 0)
        series.append((day, total))
        day += timedelta(days=1)
    return series
