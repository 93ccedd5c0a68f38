"""The callers' "next call" queue for one lab, and the 15-minute lease on a served person.

Order: callbacks due now, then other call tasks due now (relance calls, failed SMS, replies to
read), then interested people not yet confirmed, then people not reached yet, oldest first.
Each part is read through one index in due order, so serving stays flat as the data grows.
A person is leased by a conditional UPDATE (only if free or expired): two callers never get
the same person. On PostgreSQL candidates are read with FOR UPDATE SKIP LOCKED as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from crm.extensions import db
from crm.models import CallTask, Prospect, Registration, User
from crm.services.registrations import WAITING
from crm.timeutil import utcnow

CANDIDATES_PER_TRY = 8
ROUNDS_PER_PART = 5  # candidates taken by colleagues meanwhile: read the same part again
# Confirmed, declined, disqualified, cancelled, waitlisted and finished: never served.
CALLABLE_STATUSES = tuple(sorted(WAITING))
# A message a person sent us is read whatever the registration's status (a confirmed person
# asking where the lab is).
ANY_STATUS_TASKS = ("to_read",)
BUCKET_LABELS = {
    0: "Rappel demandé",
    1: "Tâche d'appel",
    2: "Intéressé·e, pas encore confirmé·e",
    3: "Pas encore joint·e",
}


@dataclass
class Served:
    registration: Registration
    task: CallTask | None
    bucket: int

    @property
    def reason(self) -> str:
        return self.task.kind_label if self.task else BUCKET_LABELS[self.bucket]


def lease_minutes() -> int:
    return int(current_app.config["CALL_LEASE_MINUTES"])


def _callable(now: datetime, caller_id: int) -> list[sa.ColumnElement[bool]]:
    """A person the caller may be given: reachable by phone, a potential user, not leased."""
    return [
        Prospect.phone.is_not(None),
        Prospect.allow_phone.is_(True),
        Prospect.qualification != "no",
        sa.or_(
            Prospect.leased_until.is_(None),
            Prospect.leased_until < now,
            Prospect.leased_by_id == caller_id,
        ),
    ]


def _task_candidates(lab_id: int, priority: int, now: datetime, caller_id: int) -> sa.Select:
    return (
        sa.select(CallTask.registration_id, CallTask.prospect_id, CallTask.id)
        .join(Registration, Registration.id == CallTask.registration_id)
        .join(Prospect, Prospect.id == CallTask.prospect_id)
        .where(
            CallTask.lab_id == lab_id,
            CallTask.status == "open",
            CallTask.priority == priority,
            CallTask.due_at <= now,
            sa.or_(Registration.status.in_(CALLABLE_STATUSES), CallTask.kind.in_(ANY_STATUS_TASKS)),
            *_callable(now, caller_id),
        )
        .order_by(CallTask.due_at, CallTask.id)
        .limit(CANDIDATES_PER_TRY)
    )


def _registration_candidates(lab_id: int, bucket: int, now: datetime, caller_id: int) -> sa.Select:
    return (
        sa.select(Registration.id, Registration.prospect_id, sa.null())
        .join(Prospect, Prospect.id == Registration.prospect_id)
        .where(
            Registration.lab_id == lab_id,
            Registration.call_bucket == bucket,
            Registration.next_call_at <= now,
            *_callable(now, caller_id),
        )
        .order_by(Registration.call_rank, Registration.next_call_at, Registration.id)
        .limit(CANDIDATES_PER_TRY)
    )


def _candidate_queries(lab_id: int, now: datetime, caller_id: int) -> list[tuple[int, sa.Select]]:
    return [
        (0, _task_candidates(lab_id, 0, now, caller_id)),
        (1, _task_candidates(lab_id, 1, now, caller_id)),
        (2, _registration_candidates(lab_id, 2, now, caller_id)),
        (3, _registration_candidates(lab_id, 3, now, caller_id)),
    ]


def _still_due(registration_id: int, task_id: int | None, now: datetime) -> sa.Exists:
    """Re-checked inside the claiming UPDATE: a colleague may have just logged this person."""
    if task_id is not None:
        return sa.exists().where(
            CallTask.id == task_id,
            CallTask.status == "open",
            CallTask.due_at <= now,
            sa.or_(
                CallTask.kind.in_(ANY_STATUS_TASKS),
                sa.exists().where(
                    Registration.id == registration_id,
                    Registration.status.in_(CALLABLE_STATUSES),
                ),
            ),
        )
    return sa.exists().where(
        Registration.id == registration_id,
        Registration.call_bucket.is_not(None),
        Registration.next_call_at <= now,
    )


def claim(
    prospect_id: int,
    caller: User,
    now: datetime,
    registration_id: int | None = None,
    task_id: int | None = None,
) -> bool:
    """Lease the person if nobody holds a live lease (and, given the registration or task it
    was served for, if that is still due); commits. One atomic UPDATE decides."""
    conditions = [
        Prospect.id == prospect_id,
        sa.or_(
            Prospect.leased_until.is_(None),
            Prospect.leased_until < now,
            Prospect.leased_by_id == caller.id,
        ),
    ]
    if registration_id is not None:
        conditions.append(_still_due(registration_id, task_id, now))
    result = db.session.execute(
        sa.update(Prospect)
        .where(*conditions)
        .values(leased_by_id=caller.id, leased_until=now + timedelta(minutes=lease_minutes()))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1


def release_all(caller: User, commit: bool = True) -> None:
    """A caller holds one lease at a time: asking for the next person frees the previous one."""
    db.session.execute(
        sa.update(Prospect)
        .where(Prospect.leased_by_id == caller.id)
        .values(leased_by_id=None, leased_until=None)
        .execution_options(synchronize_session=False)
    )
    if commit:
        db.session.commit()


def release(prospect_id: int, caller: User) -> None:
    db.session.execute(
        sa.update(Prospect)
        .where(Prospect.id == prospect_id, Prospect.leased_by_id == caller.id)
        .values(leased_by_id=None, leased_until=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def next_call(lab_id: int, caller: User, now: datetime | None = None) -> Served | None:
    """Serve and lease the next person for this lab, or None when nobody is left to call."""
    now = now or utcnow()
    release_all(caller, commit=False)  # committed with the claim: one transaction per serve
    postgres = db.session.get_bind().dialect.name == "postgresql"
    for bucket, query in _candidate_queries(lab_id, now, caller.id):
        if postgres:
            query = query.with_for_update(of=Prospect, skip_locked=True)
        # On PostgreSQL the candidates stay locked until the claim commits; other callers
        # skip them instead of waiting, so each gets a different person.
        for _ in range(ROUNDS_PER_PART):
            rows = db.session.execute(query).all()
            if not rows:
                break
            for registration_id, prospect_id, task_id in rows:
                if claim(prospect_id, caller, now, registration_id, task_id):
                    registration = db.session.get(Registration, registration_id)
                    task = db.session.get(CallTask, task_id) if task_id else None
                    return Served(registration, task, bucket)
    db.session.commit()  # nobody to serve: still give back the previous lease
    return None


def holds_lease(prospect: Prospect, caller: User, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return (
        prospect.leased_by_id == caller.id
        and prospect.leased_until is not None
        and prospect.leased_until >= now
    )


def leased_by_other(prospect: Prospect, caller: User, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return (
        prospect.leased_by_id not in (None, caller.id)
        and prospect.leased_until is not None
        and prospect.leased_until >= now
    )


def add_task(
    registration: Registration,
    kind: str,
    note: str = "",
    due_at: datetime | None = None,
    created_by: User | None = None,
) -> CallTask:
    """A task in the callers' queue for this registration (the caller commits); callbacks
    are served before every other task."""
    task = CallTask(
        registration_id=registration.id,
        lab_id=registration.lab_id,
        prospect_id=registration.prospect_id,
        kind=kind,
        priority=0 if kind == "callback" else 1,
        due_at=due_at or utcnow(),
        note=note,
        created_by_id=created_by.id if created_by else None,
    )
    db.session.add(task)
    return task
