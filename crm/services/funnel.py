"""The recruitment funnel per source, per caller or per lab.

The unit is a registration: one person invited to one lab (a person invited to two labs
counts once in each). The cohort is the registrations created in the period (per caller:
the registrations the caller called in the period). Each registration gets its furthest
step from the tables that record what happened, so that a person who went back and forth
between statuses counts once, at the furthest step reached:

    invited → contacted (a call logged or a message sent) → reached (a call answered or an
    SMS reply) → interested → confirmed (status events: ever interested / confirmed, so a
    later refusal does not erase it) → present (current status) → came back (present at a
    later lab), active user (flagged after the lab).

Up to "present", reaching a step counts every earlier one (a walk-in present at the lab was
also "reached"), so the counts never grow along the funnel; "came back" and "active user"
are each counted among the present. The SQL is crm.services.funnel_sql: one grouped query
for every row; each figure links to its people (`funnel_sql.people_query`). Results are
cached for CACHE_SECONDS in Redis.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from redis.exceptions import RedisError

from crm.extensions import db
from crm.models import Lab, Source, User
from crm.redis_conn import get_redis
from crm.services.funnel_sql import (
    AFTER_THE_LAB,
    DIMENSION_LABELS,
    DIMENSIONS,
    STEP_LABELS,
    STEPS,
    Period,
    Scope,
    funnel_query,
    people_query,
    total_median_query,
)
from crm.timeutil import utcnow

__all__ = [
    "DIMENSIONS",
    "DIMENSION_LABELS",
    "STEPS",
    "STEP_LABELS",
    "Funnel",
    "FunnelRow",
    "Period",
    "Scope",
    "compute",
    "funnel",
    "people_query",
]
CACHE_SECONDS = 60  # a figure is never older than a minute


@dataclass
class FunnelRow:
    key: int | None
    label: str
    counts: dict[str, int]
    calls: int = 0
    messages: int = 0
    no_shows: int = 0
    opted_out: int = 0
    median_days: float | None = None  # first contact → confirmation

    def rate(self, step: str) -> int | None:
        """Percent of the previous step that reached this one (of the present, for the two
        steps after the lab)."""
        index = STEPS.index(step)
        if index == 0:
            return None
        before = self.counts["present" if step in AFTER_THE_LAB else STEPS[index - 1]]
        return round(100 * self.counts[step] / before) if before else None

    def overall(self, step: str) -> int | None:
        invited = self.counts["invited"]
        return round(100 * self.counts[step] / invited) if invited else None

    @property
    def confirmed(self) -> int:
        return self.counts["confirmed"]

    @property
    def calls_per_confirmed(self) -> float | None:
        return round(self.calls / self.confirmed, 1) if self.confirmed else None

    @property
    def messages_per_confirmed(self) -> float | None:
        return round(self.messages / self.confirmed, 1) if self.confirmed else None

    @property
    def median_days_to_confirm(self) -> float | None:
        return None if self.median_days is None else round(self.median_days, 1)

    @property
    def no_show_rate(self) -> int | None:
        seen = self.counts["present"] + self.no_shows
        return round(100 * self.no_shows / seen) if seen else None

    @property
    def opt_out_rate(self) -> int | None:
        contacted = self.counts["contacted"]
        return round(100 * self.opted_out / contacted) if contacted else None


@dataclass
class Funnel:
    scope: Scope
    rows: list[FunnelRow]
    total: FunnelRow
    computed_at: datetime = field(default_factory=utcnow)


def _labels(by: str, keys: list[Any]) -> dict[Any, str]:
    ids = [k for k in keys if k is not None]
    if not ids:
        return {}
    if by == "source":
        rows = db.session.execute(sa.select(Source.id, Source.name).where(Source.id.in_(ids)))
    elif by == "caller":
        rows = db.session.execute(sa.select(User.id, User.email).where(User.id.in_(ids)))
    else:
        rows = db.session.execute(sa.select(Lab.id, Lab.title).where(Lab.id.in_(ids)))
    return {key: label for key, label in rows}


def _rows(scope: Scope) -> tuple[list[FunnelRow], float | None]:
    """The rows, and the median of all of them when the query gives it (not per caller)."""
    result = db.session.execute(funnel_query(scope)).mappings().all()
    labels = _labels(scope.by, [r["key"] for r in result])
    rows = [
        FunnelRow(
            key=r["key"],
            label=labels.get(r["key"], "Inconnu"),
            counts={step: int(r[step] or 0) for step in STEPS},
            calls=int(r["calls"] or 0),
            messages=int(r["messages"] or 0),
            no_shows=int(r["no_shows"] or 0),
            opted_out=int(r["opted_out"] or 0),
            median_days=None if r["median_days"] is None else float(r["median_days"]),
        )
        for r in result
    ]
    rows.sort(key=lambda row: (-row.counts["confirmed"], row.label))
    whole = result[0].get("total_median") if result else None
    return rows, None if whole is None else float(whole)


def compute(scope: Scope) -> Funnel:
    """The funnel, straight from the database (see `funnel` for the cached one)."""
    rows, median = _rows(scope)
    if scope.by == "caller":
        # A registration called by two callers is in both rows: total it once.
        whole, _ = _rows(replace(scope, by="source", called_only=True))
        median = db.session.execute(total_median_query(scope)).scalar()
    else:
        whole = rows
    total = _total(whole)
    total.median_days = None if median is None else float(median)
    return Funnel(scope, rows, total)


def _total(rows: list[FunnelRow]) -> FunnelRow:
    """Every row added up (the caller sets the median: a median of medians would be wrong)."""
    total = FunnelRow(None, "Total", {step: 0 for step in STEPS})
    for row in rows:
        for step in STEPS:
            total.counts[step] += row.counts[step]
        total.calls += row.calls
        total.messages += row.messages
        total.no_shows += row.no_shows
        total.opted_out += row.opted_out
    return total


# --- Cache: the dashboard reads figures computed at most a minute ago --------------------------
#
# At 100,000 prospects a funnel takes seconds to compute on PostgreSQL (bench/funnel_bench.py):
# pages read it from Redis. Each page marks its scope as wanted; the `rq cron` job
# (workers.jobs.refresh_dashboards, every REFRESH_SECONDS) recomputes the scopes wanted in the
# last WANTED_SECONDS before their entry expires, so a figure is never older than a minute and
# a page only waits for a scope nobody looked at recently.

WANTED_KEY = "crm:funnel:wanted"
WANTED_SECONDS = 600
REFRESH_SECONDS = 30


def _scope_id(scope: Scope) -> str:
    period = scope.period
    return json.dumps(
        [
            scope.by,
            period.start.isoformat() if period.start else None,
            period.end.isoformat() if period.end else None,
            scope.lab_id,
            scope.caller_id,
            scope.called_only,
        ]
    )


def _scope_from(scope_id: str) -> Scope:
    by, start, end, lab_id, caller_id, called_only = json.loads(scope_id)
    period = Period(
        date.fromisoformat(start) if start else None, date.fromisoformat(end) if end else None
    )
    return Scope(by, period, lab_id, caller_id, called_only)


def _cache_key(scope: Scope) -> str:
    return f"crm:funnel:{_scope_id(scope)}"


def funnel(scope: Scope) -> Funnel:
    """The funnel from the cache (at most CACHE_SECONDS old), computed now when nobody asked
    for it recently; Redis down: computed every time."""
    key = _cache_key(scope)
    try:
        redis = get_redis()
        redis.zadd(WANTED_KEY, {_scope_id(scope): time.time()})
        cached = redis.get(key)
    except RedisError:
        cached = None
    if cached:
        return _load(scope, json.loads(cached))
    return _store(compute(scope))


def _store(result: Funnel) -> Funnel:
    with contextlib.suppress(RedisError):
        get_redis().set(_cache_key(result.scope), json.dumps(_dump(result)), ex=CACHE_SECONDS)
    return result


def refresh_wanted() -> int:
    """Recompute every scope a page asked for in the last WANTED_SECONDS; returns how many."""
    redis = get_redis()
    redis.zremrangebyscore(WANTED_KEY, 0, time.time() - WANTED_SECONDS)
    refreshed = 0
    for scope_id in redis.zrange(WANTED_KEY, 0, -1):
        _store(compute(_scope_from(scope_id)))
        db.session.rollback()  # nothing to keep: release the snapshot between scopes
        refreshed += 1
    return refreshed


def _dump(result: Funnel) -> dict[str, Any]:
    return {
        "rows": [asdict(r) for r in result.rows],
        "total": asdict(result.total),
        "computed_at": result.computed_at.isoformat(),
    }


def _load(scope: Scope, data: dict[str, Any]) -> Funnel:
    return Funnel(
        scope,
        [FunnelRow(**row) for row in data["rows"]],
        FunnelRow(**data["total"]),
        datetime.fromisoformat(data["computed_at"]),
    )
