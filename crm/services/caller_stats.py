"""A caller's own day: calls made, people reached, confirmations, callbacks due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import sqlalchemy as sa

from crm.extensions import db
from crm.models import Call, CallTask, User
from crm.models.call import REACHED_OUTCOMES
from crm.timeutil import local_zone, utcnow


@dataclass
class CallerDay:
    calls: int
    reached: int
    confirmed: int
    callbacks_due: int


def local_day_bounds(now: datetime) -> tuple[datetime, datetime]:
    """Start and end (UTC) of the day `now` falls in, in CRM_TIMEZONE."""
    local = now.astimezone(local_zone())
    start = datetime.combine(local.date(), time(0), tzinfo=local_zone())
    end = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=local_zone())
    return start.astimezone(UTC), end.astimezone(UTC)


def caller_day(caller: User, now: datetime | None = None) -> CallerDay:
    now = now or utcnow()
    start, end = local_day_bounds(now)
    today = sa.and_(Call.caller_id == caller.id, Call.created_at >= start, Call.created_at < end)
    counts = db.session.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(Call.outcome.in_(REACHED_OUTCOMES)),
            sa.func.count().filter(Call.outcome == "confirmed"),
        ).where(today)
    ).one()
    callbacks_due = db.session.scalar(
        sa.select(sa.func.count()).where(
            CallTask.kind == "callback",
            CallTask.status == "open",
            CallTask.created_by_id == caller.id,
            CallTask.due_at < end,
        )
    )
    return CallerDay(counts[0], counts[1], counts[2], callbacks_due or 0)
