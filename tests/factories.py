"""Small builders for test data, going through the real services."""

from __future__ import annotations

from datetime import timedelta

from crm.extensions import db
from crm.models import CallTask, Prospect, Registration
from crm.services.registrations import register, transition
from crm.timeutil import utcnow

_counter = iter(range(10_000_000, 99_999_999, 7919))


def person(world, status="to_contact", age_minutes=60, **fields) -> Registration:
    defaults = {"phone": f"+336{next(_counter)}", "allow_phone": True, "first_name": "P"}
    prospect = Prospect(source=world["source"], **{**defaults, **fields})
    db.session.add(prospect)
    db.session.flush()
    registration, _ = register(prospect, world["lab"], None)
    registration.next_call_at = utcnow() - timedelta(minutes=age_minutes)
    for step in {
        "interested": ["interested"],
        "confirmed": ["confirmed"],
        "declined": ["declined"],
        "contacted": ["contacted"],
        "disqualified": ["disqualified"],
        "waitlisted": ["waitlisted"],
    }.get(status, []):
        transition(registration, step, None)
    db.session.commit()
    return registration


def task(world, registration, kind="callback", due_minutes=-5) -> CallTask:
    t = CallTask(
        registration_id=registration.id,
        lab_id=registration.lab_id,
        prospect_id=registration.prospect_id,
        kind=kind,
        priority=0 if kind == "callback" else 1,
        due_at=utcnow() + timedelta(minutes=due_minutes),
    )
    db.session.add(t)
    db.session.commit()
    return t
