"""20 callers pulling and logging for 60 seconds at once, each thread with its own session.

    .venv/bin/python bench/callers_concurrency_bench.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/callers_concurrency_bench.py --seconds 20      # SQLite, shorter

Every serve is recorded with the moment it was leased and the moment its outcome was logged.
At the end it checks, from the database, that no person was held by two callers at
overlapping times and that every logged outcome is a row in `calls` (nothing lost). Prints
throughput and serve latency. On PostgreSQL it uses its own database, `crm_bench_calls`.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from next_call_bench import database, populate  # noqa: E402

from crm import create_app  # noqa: E402
from crm.config import testing_config  # noqa: E402
from crm.extensions import db  # noqa: E402
from crm.models import Call, User  # noqa: E402
from crm.services import call_queue, calls  # noqa: E402
from crm.services.accounts import create_user  # noqa: E402

OUTCOMES = ["no_answer", "voicemail", "interested", "confirmed", "declined"]
FAILURES: list[str] = []


def caller_loop(app, lab_id: int, caller_id: int, stop_at: float, log: list, lock) -> None:  # type: ignore[no-untyped-def]
    try:
        _caller_loop(app, lab_id, caller_id, stop_at, log, lock)
    except Exception as exc:
        with lock:
            FAILURES.append(f"caller {caller_id}: {type(exc).__name__}: {exc}")


def _caller_loop(app, lab_id: int, caller_id: int, stop_at: float, log: list, lock) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(caller_id)
    with app.app_context():
        caller = db.session.get(User, caller_id)
        while time.monotonic() < stop_at:
            start = time.perf_counter()
            served = call_queue.next_call(lab_id, caller)
            leased_at = time.perf_counter()
            if served is None:
                break
            prospect_id = served.registration.prospect_id
            time.sleep(rng.uniform(0.0, 0.02))  # the call itself
            try:
                calls.log_outcome(
                    served.registration, caller, calls.Outcome(rng.choice(OUTCOMES)), served.task
                )
                logged = True
            except calls.CallError:
                db.session.rollback()
                logged = False
            done_at = time.perf_counter()
            with lock:
                log.append((caller_id, prospect_id, leased_at, done_at, leased_at - start, logged))
        db.session.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--callers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    with database(args.database_url) as url:
        config = testing_config(url, "redis://127.0.0.1:1/0", Path(tempfile.mkdtemp()))
        # One connection per caller thread, as each gunicorn thread would have.
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_size": args.callers + 2, "max_overflow": 5}
        app = create_app(config)
        with app.app_context():
            db.create_all()
            lab_id, _ = populate(20_000, 2)
            ids = [
                create_user(f"load{i}@bench.fr", "x" * 12, "caller").id for i in range(args.callers)
            ]
            db.session.remove()
        log: list = []
        lock = threading.Lock()
        stop_at = time.monotonic() + args.seconds
        threads = [
            threading.Thread(target=caller_loop, args=(app, lab_id, i, stop_at, log, lock))
            for i in ids
        ]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        with app.app_context():
            stored = db.session.scalar(sa.select(sa.func.count()).select_from(Call))
            db.session.remove()
            db.engine.dispose()
    overlaps = 0
    by_person: dict[int, list[tuple[float, float, int]]] = defaultdict(list)
    for caller_id, prospect_id, leased_at, done_at, _, _ in log:
        by_person[prospect_id].append((leased_at, done_at, caller_id))
    for spans in by_person.values():
        spans.sort()
        held_until, holder = 0.0, None
        for start, end, who in spans:
            if start < held_until and who != holder:
                overlaps += 1
            if end > held_until:
                held_until, holder = end, who
    logged = sum(1 for entry in log if entry[5])
    serve_ms = sorted(entry[4] * 1000 for entry in log)
    print(
        f"{args.callers} callers for {elapsed:.1f} s on "
        f"{'PostgreSQL' if args.database_url else 'SQLite'}"
    )
    print(
        f"  serves: {len(log)} ({len(log) / elapsed:.1f}/s), outcomes logged: {logged}, "
        f"rows in calls: {stored}, refused: {len(log) - logged}"
    )
    print(
        f"  serve latency: median {statistics.median(serve_ms):.1f} ms, "
        f"p95 {serve_ms[int(len(serve_ms) * 0.95)]:.1f} ms"
    )
    print(f"  people held by two callers at once: {overlaps}; lost outcomes: {logged - stored}")
    print(f"  caller threads that failed: {len(FAILURES)}")
    for failure in FAILURES:
        print(f"    {failure}")
    if overlaps or logged != stored or FAILURES:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
