"""The funnel's SQL: which registrations count (the cohort), what happened to each (one
grouped pass over events, calls, messages, replies and consents), and their furthest step.
See crm.services.funnel for the definitions and the figures built on it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import FunctionElement

from crm.models import Call, Consent, Event, FollowUp, InboundMessage, Lab, Prospect, Registration
from crm.models.call import REACHED_OUTCOMES
from crm.timeutil import local_zone

STEPS = (
    "invited",
    "contacted",
    "reached",
    "interested",
    "confirmed",
    "present",
    "returned",
    "active",
)
STEP_LABELS = {
    "invited": "Invités",
    "contacted": "Contactés",
    "reached": "Joints",
    "interested": "Intéressés",
    "confirmed": "Confirmés",
    "present": "Présents",
    "returned": "Revenus à un lab suivant",
    "active": "Utilisateurs actifs",
}
# Up to "present", reaching a step counts every earlier one. The two steps after the lab are
# counted among the present, each on its own: an active user may never have come back.
LAST_STAGE = STEPS.index("present")
AFTER_THE_LAB = ("returned", "active")
# The people behind the other figures' rates (the per-confirmed figures link to "confirmed").
PEOPLE_LISTS = {"no_show": "Absents le jour du lab", "opted_out": "Ont refusé d'être contactés"}
DIMENSIONS = ("source", "caller", "lab")
DIMENSION_LABELS = {"source": "Par source", "caller": "Par appelant·e", "lab": "Par open lab"}
INTERESTED_OR_BEYOND = ("interested", "confirmed", "waitlisted", "attended", "no_show")
CONFIRMED_OR_BEYOND = ("confirmed", "attended", "no_show")
CACHE_SECONDS = 60  # a figure is never older than a minute


@dataclass(frozen=True)
class Period:
    """Local calendar days, both included; None leaves that side open."""

    start: date | None = None
    end: date | None = None

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        zone = local_zone()
        low = datetime.combine(self.start, time(0), zone) if self.start else None
        high = datetime.combine(self.end + timedelta(days=1), time(0), zone) if self.end else None
        return low, high


@dataclass(frozen=True)
class Scope:
    """What a funnel counts: grouped `by` a dimension, registrations made in `period` (or
    called in it), one lab or all, one caller's calls or everyone's."""

    by: str
    period: Period = field(default_factory=lambda: Period())
    lab_id: int | None = None
    caller_id: int | None = None
    called_only: bool = False  # only registrations someone called (the per-caller total)

    def __post_init__(self) -> None:
        if self.by not in DIMENSIONS:
            raise ValueError(f"unknown funnel dimension {self.by!r}")

    @property
    def through_calls(self) -> bool:
        return self.by == "caller" or self.caller_id is not None or self.called_only


def _cohort(scope: Scope) -> sa.Subquery:
    """(registration_id, key): the registrations counted, with the row they belong to."""
    by, lab_id, caller_id = scope.by, scope.lab_id, scope.caller_id
    low, high = scope.period.bounds()
    if scope.through_calls:
        called = sa.select(
            Call.registration_id.label("registration_id"), Call.caller_id.label("caller_key")
        ).where(Call.registration_id.is_not(None))
        if low:
            called = called.where(Call.created_at >= low)
        if high:
            called = called.where(Call.created_at < high)
        if caller_id is not None:
            called = called.where(Call.caller_id == caller_id)
        if lab_id is not None:
            called = called.where(Call.lab_id == lab_id)
        pairs = called.distinct().subquery("called")
        key = {
            "caller": pairs.c.caller_key,
            "source": Prospect.source_id,
            "lab": Registration.lab_id,
        }[by]
        query = (
            sa.select(Registration.id.label("registration_id"), key.label("key"))
            .join(pairs, pairs.c.registration_id == Registration.id)
            .join(Prospect, Prospect.id == Registration.prospect_id)
        )
        if by != "caller":
            query = query.distinct()
        return query.subquery("cohort")
    key = Prospect.source_id if by == "source" else Registration.lab_id
    query = sa.select(Registration.id.label("registration_id"), key.label("key")).join(
        Prospect, Prospect.id == Registration.prospect_id
    )
    if low:
        query = query.where(Registration.created_at >= low)
    if high:
        query = query.where(Registration.created_at < high)
    if lab_id is not None:
        query = query.where(Registration.lab_id == lab_id)
    return query.subquery("cohort")


def _facts(lab_id: int | None) -> dict[str, sa.Subquery]:
    """One grouped pass over each table that records what happened, per registration."""
    status = (
        sa.select(
            Event.registration_id.label("registration_id"),
            sa.func.max(sa.case((Event.to_status.in_(INTERESTED_OR_BEYOND), 1), else_=0)).label(
                "interested"
            ),
            sa.func.min(
                sa.case((Event.to_status.in_(CONFIRMED_OR_BEYOND), Event.created_at))
            ).label("confirmed_at"),
        )
        .where(Event.kind == "registration.status", Event.registration_id.is_not(None))
        .group_by(Event.registration_id)
    )
    calls = sa.select(
        Call.registration_id.label("registration_id"),
        sa.func.count().label("calls"),
        sa.func.min(Call.created_at).label("first_call"),
        sa.func.max(sa.case((Call.outcome.in_(sorted(REACHED_OUTCOMES)), 1), else_=0)).label(
            "answered"
        ),
    ).group_by(Call.registration_id)
    sent = (
        sa.select(
            FollowUp.registration_id.label("registration_id"),
            sa.func.count().label("messages"),
            sa.func.min(FollowUp.sent_at).label("first_message"),
        )
        .where(FollowUp.sent_at.is_not(None), FollowUp.message_id.is_not(None))
        .group_by(FollowUp.registration_id)
    )
    replies = (
        sa.select(InboundMessage.registration_id.label("registration_id"))
        .where(InboundMessage.registration_id.is_not(None))
        .group_by(InboundMessage.registration_id)
    )
    if lab_id is not None:
        status = status.where(Event.lab_id == lab_id)
        calls = calls.where(Call.lab_id == lab_id)
    opted_out = (
        sa.select(Consent.prospect_id.label("prospect_id"))
        .where(Consent.granted.is_(False), Consent.from_person.is_(True))
        .group_by(Consent.prospect_id)
    )
    return {
        "status": status.subquery("status_facts"),
        "calls": calls.subquery("call_facts"),
        "sent": sent.subquery("sent_facts"),
        "replies": replies.subquery("reply_facts"),
        "opted_out": opted_out.subquery("opt_out_facts"),
    }


def per_registration(scope: Scope) -> sa.Subquery:
    """Each counted registration with its key, furthest step and extra figures."""
    cohort = _cohort(scope)
    facts = _facts(scope.lab_id)
    status, calls, sent = facts["status"], facts["calls"], facts["sent"]
    replies, opted = facts["replies"], facts["opted_out"]
    later = aliased(Registration)
    later_lab, this_lab = aliased(Lab), aliased(Lab)
    present = Registration.status == "attended"
    returned = sa.exists().where(
        later.prospect_id == Registration.prospect_id,
        later.status == "attended",
        later.lab_id == later_lab.id,
        later_lab.starts_at > this_lab.starts_at,
    )
    calls_counted: sa.ColumnElement[int] = calls.c.calls
    own: sa.Subquery | None = None
    if scope.by == "caller" or scope.caller_id is not None:
        # A caller's row counts that caller's calls only (the stage counts everyone's).
        own = (
            sa.select(
                Call.registration_id.label("registration_id"),
                Call.caller_id.label("caller_id"),
                sa.func.count().label("calls"),
            )
            .group_by(Call.registration_id, Call.caller_id)
            .subquery("own_calls")
        )
        calls_counted = own.c.calls
    reached = sa.or_(
        Registration.reached_at.is_not(None),
        calls.c.answered == 1,
        replies.c.registration_id.is_not(None),
    )
    stage = sa.case(
        (present, 5),
        (status.c.confirmed_at.is_not(None), 4),
        (status.c.interested == 1, 3),
        (reached, 2),
        (sa.or_(calls.c.registration_id.is_not(None), sent.c.registration_id.is_not(None)), 1),
        else_=0,
    )
    first_contact = sa.case(
        (
            sa.and_(calls.c.first_call.is_not(None), sent.c.first_message.is_not(None)),
            sa.case(
                (calls.c.first_call < sent.c.first_message, calls.c.first_call),
                else_=sent.c.first_message,
            ),
        ),
        else_=sa.func.coalesce(calls.c.first_call, sent.c.first_message),
    )
    query = (
        sa.select(
            Registration.id.label("registration_id"),
            cohort.c.key.label("key"),
            stage.label("stage"),
            sa.case((sa.and_(present, returned), 1), else_=0).label("returned"),
            sa.case((sa.and_(present, Prospect.active_user_at.is_not(None)), 1), else_=0).label(
                "active"
            ),
            sa.func.coalesce(calls_counted, 0).label("calls"),
            sa.func.coalesce(sent.c.messages, 0).label("messages"),
            sa.case((Registration.status == "no_show", 1), else_=0).label("no_show"),
            sa.case((opted.c.prospect_id.is_not(None), 1), else_=0).label("opted_out"),
            first_contact.label("first_contact"),
            status.c.confirmed_at.label("confirmed_at"),
        )
        .select_from(cohort)
        .join(Registration, Registration.id == cohort.c.registration_id)
        .join(Prospect, Prospect.id == Registration.prospect_id)
        .join(this_lab, this_lab.id == Registration.lab_id)
        .outerjoin(status, status.c.registration_id == Registration.id)
        .outerjoin(calls, calls.c.registration_id == Registration.id)
        .outerjoin(sent, sent.c.registration_id == Registration.id)
        .outerjoin(replies, replies.c.registration_id == Registration.id)
        .outerjoin(opted, opted.c.prospect_id == Registration.prospect_id)
    )
    if own is not None:
        caller = cohort.c.key if scope.by == "caller" else sa.literal(scope.caller_id)
        query = query.outerjoin(
            own, sa.and_(own.c.registration_id == Registration.id, own.c.caller_id == caller)
        )
    return query.cte("per_registration")


class days_between(FunctionElement[float]):
    """(later − earlier) in days, as a float, on SQLite and PostgreSQL."""

    type = sa.Float()
    inherit_cache = True


@compiles(days_between)
def _days_between_postgresql(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400.0)"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"(julianday({later}) - julianday({earlier}))"


def _median_delays(rows: sa.CTE, per_key: bool = True) -> sa.Subquery:
    """Per key (or over every row), the median days from first contact to confirmation
    (window functions: SQLite has no percentile function)."""
    delay = days_between(rows.c.confirmed_at, rows.c.first_contact)
    partition = rows.c.key if per_key else None
    ranked = (
        sa.select(
            (rows.c.key if per_key else sa.literal(0)).label("key"),
            delay.label("delay"),
            sa.func.row_number().over(partition_by=partition, order_by=delay).label("rank"),
            sa.func.count().over(partition_by=partition).label("size"),
        )
        .where(rows.c.confirmed_at >= rows.c.first_contact)
        .subquery("ranked_delays")
    )
    middle = sa.or_(
        ranked.c.rank == (ranked.c.size + 1) // 2, ranked.c.rank == (ranked.c.size + 2) // 2
    )
    return (
        sa.select(ranked.c.key, sa.func.avg(ranked.c.delay).label("median_days"))
        .where(middle)
        .group_by(ranked.c.key)
        .subquery("median_delays")
    )


def funnel_query(scope: Scope) -> sa.Select:
    """Per key: the count at each step and the extra figures, in one statement."""
    rows = per_registration(scope)
    medians = _median_delays(rows)
    steps = [
        sa.func.sum(sa.case((rows.c.stage >= index, 1), else_=0)).label(step)
        for index, step in enumerate(STEPS[: LAST_STAGE + 1])
    ]
    steps += [sa.func.sum(rows.c[step]).label(step) for step in AFTER_THE_LAB]
    grouped = (
        sa.select(
            rows.c.key,
            *steps,
            sa.func.sum(rows.c.calls).label("calls"),
            sa.func.sum(rows.c.messages).label("messages"),
            sa.func.sum(rows.c.no_show).label("no_shows"),
            sa.func.sum(rows.c.opted_out).label("opted_out"),
        )
        .group_by(rows.c.key)
        .subquery("grouped")
    )
    # NULL keys (a source-less row cannot exist, but a caller deleted later can) still join.
    same_key = sa.or_(
        grouped.c.key == medians.c.key, sa.and_(grouped.c.key.is_(None), medians.c.key.is_(None))
    )
    columns = [grouped, medians.c.median_days]
    if scope.by != "caller":
        # Each registration is in one row: the median of them all comes from the same rows.
        whole = _median_delays(rows, per_key=False)
        columns.append(sa.select(whole.c.median_days).scalar_subquery().label("total_median"))
    return sa.select(*columns).outerjoin(medians, same_key).order_by(grouped.c.key)


def total_median_query(scope: Scope) -> sa.Select:
    """The median over every counted registration once, for the per-caller funnel (where a
    registration called by two callers is in two rows)."""
    rows = per_registration(replace(scope, by="lab", called_only=scope.through_calls))
    return sa.select(_median_delays(rows, per_key=False).c.median_days)


def people_query(scope: Scope, key: int | None, step: str) -> sa.Select:
    """The registrations behind one figure (key None: the total), for the list page: a step
    of the funnel, or one of the people behind a rate (PEOPLE_LISTS)."""
    if step not in STEPS and step not in PEOPLE_LISTS:
        raise ValueError(f"unknown funnel step {step!r}")
    rows = per_registration(scope)
    if step in PEOPLE_LISTS or step in AFTER_THE_LAB:
        reached = rows.c[step] == 1
    else:
        reached = rows.c.stage >= STEPS.index(step)
    query = sa.select(rows.c.registration_id).where(reached)
    if key is not None:
        query = query.where(rows.c.key == key)
    return query.distinct()
