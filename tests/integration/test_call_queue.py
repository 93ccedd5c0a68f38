"""The callers' queue: order, exclusions, leases and their expiry."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from crm.extensions import db
from crm.models import Lab, Prospect, User
from crm.services import call_queue
from crm.services.accounts import create_user
from crm.timeutil import utcnow
from tests.factories import person, task


def serve(world, who="alice"):
    served = call_queue.next_call(world["lab"].id, world[who])
    return served.registration.id if served else None


def test_order_callbacks_then_tasks_then_interested_then_not_reached_oldest_first(world):
    old = person(world, age_minutes=600)
    new = person(world, age_minutes=10)
    interested = person(world, "interested")
    relance = person(world)
    task(world, relance, kind="followup_call")
    callback = person(world)
    task(world, callback, kind="callback")
    served = []
    for n in range(5):
        # A caller holds one lease at a time: a fresh caller for each keeps every lease held.
        user = create_user(f"c{n}@test.fr", "x" * 12, "caller")
        result = call_queue.next_call(world["lab"].id, user)
        served.append(result.registration.id)
    assert served == [callback.id, relance.id, interested.id, old.id, new.id]


def test_people_never_served(world):
    person(world, "confirmed")
    person(world, "declined")
    person(world, "disqualified")
    person(world, "waitlisted")
    person(world, qualification="no")
    person(world, allow_phone=False)  # opted out of calls
    person(world, phone=None, email="sans-tel@test.fr")
    future = person(world)
    task(world, future, kind="callback", due_minutes=120)
    future.next_call_at = utcnow() + timedelta(hours=2)  # as logging a callback leaves it
    db.session.commit()
    assert serve(world) is None


def test_a_served_person_is_leased_and_not_given_to_a_colleague(world):
    first = person(world, age_minutes=100)
    second = person(world, age_minutes=50)
    assert serve(world, "alice") == first.id
    assert serve(world, "bob") == second.id
    carol = create_user("carol@test.fr", "x" * 12, "caller")
    assert call_queue.next_call(world["lab"].id, carol) is None
    prospect = db.session.get(Prospect, first.prospect_id)
    assert prospect.leased_by_id == world["alice"].id
    assert prospect.leased_until > utcnow() + timedelta(minutes=14)


def test_an_expired_lease_is_served_again(world):
    reg = person(world)
    assert serve(world, "alice") == reg.id
    later = utcnow() + timedelta(minutes=16)
    served = call_queue.next_call(world["lab"].id, world["bob"], now=later)
    assert served is not None and served.registration.id == reg.id


def test_a_caller_holds_one_lease_and_gets_the_same_person_until_logged(world):
    first = person(world, age_minutes=100)
    second = person(world, age_minutes=50)
    assert serve(world, "alice") == first.id
    assert serve(world, "alice") == first.id  # not logged yet: still hers, still first
    assert serve(world, "bob") == second.id
    leases = db.session.scalars(
        sa.select(Prospect.id).where(Prospect.leased_by_id == world["alice"].id)
    ).all()
    assert leases == [first.prospect_id]


def test_two_callers_claiming_the_same_person_only_one_wins(world):
    reg = person(world)
    now = utcnow()
    assert call_queue.claim(reg.prospect_id, world["alice"], now)
    assert not call_queue.claim(reg.prospect_id, world["bob"], now)
    owner = db.session.scalar(
        sa.select(Prospect.leased_by_id).where(Prospect.id == reg.prospect_id)
    )
    assert owner == world["alice"].id


def test_queue_is_per_lab(world):
    other = Lab(
        title="Autre",
        starts_at=utcnow() + timedelta(days=50),
        ends_at=utcnow() + timedelta(days=50, hours=3),
        status="recruiting",
    )
    db.session.add(other)
    db.session.commit()
    person(world)
    assert call_queue.next_call(other.id, world["alice"]) is None


def test_users_are_real_rows(world):
    assert (
        db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 3
    )  # two callers and a manager
