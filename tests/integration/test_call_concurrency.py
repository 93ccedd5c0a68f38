"""Callers pulling at the same moment from threads with their own sessions: nobody is served
to two callers at once (PostgreSQL: SKIP LOCKED + conditional update; SQLite: write lock)."""

from __future__ import annotations

import threading
from collections import Counter

import sqlalchemy as sa

from crm.extensions import db
from crm.models import Call, Prospect, Registration, User
from crm.services import call_queue, calls
from crm.services.accounts import create_user
from tests.factories import person

CALLERS = 8
PEOPLE = 40


def _run_callers(app, lab_id, caller_ids, rounds):
    served: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(caller_ids))
    lock = threading.Lock()

    def work(caller_id: int) -> None:
        try:
            with app.app_context():
                caller = db.session.get(User, caller_id)
                barrier.wait()
                for _ in range(rounds):
                    result = call_queue.next_call(lab_id, caller)
                    if result is None:
                        return
                    with lock:
                        served.append((caller_id, result.registration.prospect_id))
                    calls.log_outcome(result.registration, caller, calls.Outcome("interested"))
                db.session.remove()
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(cid,)) for cid in caller_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return served


def test_concurrent_callers_never_share_a_person_and_lose_no_outcome(app, world):
    for _ in range(PEOPLE):
        person(world)
    caller_ids = [create_user(f"t{i}@test.fr", "x" * 12, "caller").id for i in range(CALLERS)]
    lab_id = world["lab"].id
    db.session.commit()
    db.session.remove()

    served = _run_callers(app, lab_id, caller_ids, rounds=PEOPLE)

    per_person = Counter(prospect_id for _, prospect_id in served)
    assert len(per_person) == PEOPLE  # everybody was served...
    assert max(per_person.values()) == 1  # ...exactly once, since each became "interested"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Call)) == PEOPLE
        statuses = db.session.scalars(sa.select(Registration.status)).all()
        assert set(statuses) == {"interested"}
        leased = db.session.scalar(
            sa.select(sa.func.count()).where(Prospect.leased_by_id.is_not(None))
        )
        assert leased == 0
