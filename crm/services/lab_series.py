"""A series of labs (each lab's `next_lab`), one after another, with what each one gave:
confirmed, present, no-show, returning (present again after an earlier lab of the series),
and the motivated and active users among the present — the method expects about one in
ten of the people met to become a real user of the service."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from crm.extensions import db
from crm.models import Lab, Prospect, Registration
from crm.services.labs import CONFIRMED_STATUSES

MAX_LABS = 100  # a series is a handful of labs; the bound only guards against a loop


@dataclass(frozen=True)
class SeriesLab:
    lab: Lab
    confirmed: int
    present: int
    no_show: int
    returning: int
    motivated: int
    active: int

    @property
    def no_show_rate(self) -> int | None:
        """Percent of the people seen on the day's list who did not come."""
        seen = self.present + self.no_show
        return round(100 * self.no_show / seen) if seen else None


@dataclass(frozen=True)
class Series:
    labs: list[SeriesLab]
    people_present: int  # distinct people present at one lab of the series at least
    motivated: int
    active: int

    @property
    def active_rate(self) -> int | None:
        return round(100 * self.active / self.people_present) if self.people_present else None


def chain(lab: Lab) -> list[Lab]:
    """The labs of the series `lab` belongs to, first to last."""
    first, seen = lab, {lab.id}
    while len(seen) < MAX_LABS:
        previous = db.session.scalar(
            sa.select(Lab).where(Lab.next_lab_id == first.id).order_by(Lab.starts_at).limit(1)
        )
        if previous is None or previous.id in seen:
            break
        first = previous
        seen.add(first.id)
    labs, current, visited = [first], first, {first.id}
    while current.next_lab is not None and current.next_lab.id not in visited:
        current = current.next_lab
        labs.append(current)
        visited.add(current.id)
        if len(labs) >= MAX_LABS:
            break
    return labs


def series_of(lab: Lab) -> Series:
    labs = chain(lab)
    ids = [item.id for item in labs]
    counts = _status_counts(ids)
    flags = _flags(ids)
    returning = _returning(labs)
    rows = [
        SeriesLab(
            lab=item,
            confirmed=sum(counts.get((item.id, s), 0) for s in CONFIRMED_STATUSES),
            present=counts.get((item.id, "attended"), 0),
            no_show=counts.get((item.id, "no_show"), 0),
            returning=returning.get(item.id, 0),
            motivated=flags.get(item.id, (0, 0))[0],
            active=flags.get(item.id, (0, 0))[1],
        )
        for item in labs
    ]
    present_people = (
        sa.select(Registration.prospect_id)
        .where(Registration.lab_id.in_(ids), Registration.status == "attended")
        .distinct()
        .subquery()
    )
    people, motivated, active = db.session.execute(
        sa.select(
            sa.func.count(),
            sa.func.count(Prospect.motivated_at),
            sa.func.count(Prospect.active_user_at),
        ).join(present_people, present_people.c.prospect_id == Prospect.id)
    ).one()
    return Series(rows, int(people), int(motivated), int(active))


def _status_counts(lab_ids: list[int]) -> dict[tuple[int, str], int]:
    rows = db.session.execute(
        sa.select(Registration.lab_id, Registration.status, sa.func.count())
        .where(Registration.lab_id.in_(lab_ids))
        .group_by(Registration.lab_id, Registration.status)
    ).all()
    return {(lab_id, status): int(count) for lab_id, status, count in rows}


def _flags(lab_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(motivated, active) among each lab's present people."""
    rows = db.session.execute(
        sa.select(
            Registration.lab_id,
            sa.func.count(Prospect.motivated_at),
            sa.func.count(Prospect.active_user_at),
        )
        .join(Prospect, Prospect.id == Registration.prospect_id)
        .where(Registration.lab_id.in_(lab_ids), Registration.status == "attended")
        .group_by(Registration.lab_id)
    ).all()
    return {lab_id: (int(m), int(a)) for lab_id, m, a in rows}


def _returning(labs: list[Lab]) -> dict[int, int]:
    """Per lab, the present people who were already present at an earlier lab of the series."""
    earlier = aliased(Registration)
    result: dict[int, int] = {}
    for index, item in enumerate(labs[1:], start=1):
        before = [lab.id for lab in labs[:index]]
        result[item.id] = int(
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(Registration)
                .where(
                    Registration.lab_id == item.id,
                    Registration.status == "attended",
                    sa.exists().where(
                        earlier.prospect_id == Registration.prospect_id,
                        earlier.lab_id.in_(before),
                        earlier.status == "attended",
                    ),
                )
            )
            or 0
        )
    return result
