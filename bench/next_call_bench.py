"""Benchmark of "Prochain appel": serving the next person stays flat as the data grows.

    .venv/bin/python bench/next_call_bench.py                 # a temporary SQLite file
    .venv/bin/python bench/next_call_bench.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Two data sets in the same run: the reference, 1,000 prospects (10,000 events), and the large
one, 100,000 prospects and 1,000,000 events, each with 1 % of open call tasks and a tenth of
the people already called. For each, 300 callers' turns: serve the next person (timed), then
log "no answer" (not timed). Prints the median and p95 of serving and the ratio large/small
(goal: at most 1.5). On PostgreSQL the benchmark uses its own database, `crm_bench_calls`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flask import Flask  # noqa: E402

from crm import create_app  # noqa: E402
from crm.config import normalise_database_url, testing_config  # noqa: E402
from crm.extensions import db  # noqa: E402
from crm.models import Lab, Source, User  # noqa: E402
from crm.services import call_queue, calls  # noqa: E402
from crm.services.accounts import create_user  # noqa: E402
from crm.timeutil import utcnow  # noqa: E402

BENCH_DATABASE = "crm_bench_calls"
TURNS = 300


@contextmanager
def database(url: str | None, name: str = BENCH_DATABASE) -> Iterator[str]:
    """A fresh database: a temporary SQLite file, or a dedicated PostgreSQL database."""
    if not url or url.startswith("sqlite"):
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.sqlite3"
        return
    url = normalise_database_url(url)
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def populate(prospects: int, events_per_prospect: int) -> tuple[int, list[User]]:
    """Set-based inserts (a recursive CTE works on SQLite and PostgreSQL alike)."""
    now = utcnow()
    sources = [Source(name=f"Source {i}") for i in range(3)]
    lab = Lab(
        title="Bench",
        starts_at=now + timedelta(days=30),
        ends_at=now + timedelta(days=30, hours=4),
        status="recruiting",
    )
    db.session.add_all([*sources, lab])
    db.session.commit()
    callers = [create_user(f"c{i}@bench.fr", "x" * 12, "caller") for i in range(3)]
    first_source = sources[0].id
    series = (
        f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {prospects})"
    )
    created = (now - timedelta(days=10)).replace(tzinfo=None).isoformat(sep=" ")
    postgres = db.session.get_bind().dialect.name == "postgresql"
    # SQLite stores the UTC wall clock as text; PostgreSQL gets a timestamptz in UTC.
    stamp = "CAST(:created AS TIMESTAMPTZ)" if postgres else ":created"
    future_stamp = "CAST(:future AS TIMESTAMPTZ)" if postgres else ":future"
    if postgres:
        created += "+00"
    db.session.execute(
        sa.text(f"""{series}
        INSERT INTO prospects (id, first_name, last_name, phone, email, organisation, profile,
            notes,
            source_id, qualification, disqualification_reason, allow_sms, allow_email,
            allow_phone, search_text, version, created_at, updated_at)
        SELECT i, 'Prénom', 'Nom ' || i, '+336' || CAST(10000000 + i AS TEXT),
            'p' || i || '@bench.fr', 'Structure ' || (i % 500), '', '',
            {first_source} + (i % 3), CASE WHEN i % 50 = 3 THEN 'no' ELSE 'yes' END, '',
            TRUE, TRUE, (i % 40 <> 7), 'nom ' || i, 1, {stamp}, {stamp} FROM n"""),
        {"created": created},
    )
    db.session.execute(
        sa.text(f"""{series}
        INSERT INTO registrations (id, prospect_id, lab_id, status, call_bucket, call_rank,
            next_call_at, last_call_at, version, created_at, updated_at)
        SELECT i, i, {lab.id},
            CASE WHEN i % 7 = 0 THEN 'interested' WHEN i % 11 = 0 THEN 'confirmed'
                 WHEN i % 10 = 0 THEN 'contacted' ELSE 'to_contact' END,
            CASE WHEN i % 7 = 0 THEN 2 WHEN i % 11 = 0 THEN NULL ELSE 3 END, 0,
            {stamp}, NULL, 1, {stamp}, {stamp} FROM n"""),
        {"created": created},
    )
    db.session.execute(
        sa.text(f"""{series}
        INSERT INTO call_tasks (registration_id, lab_id, prospect_id, kind, status, priority,
            due_at, note, created_at)
        SELECT i, {lab.id}, i, CASE WHEN i % 200 = 0 THEN 'callback' ELSE 'followup_call' END,
            CASE WHEN i % 300 = 0 THEN 'done' ELSE 'open' END,
            CASE WHEN i % 200 = 0 THEN 0 ELSE 1 END,
            CASE WHEN i % 500 = 0 THEN {stamp} ELSE {future_stamp} END, '', {stamp}
        FROM n WHERE i % 100 = 0"""),
        {
            "created": created,
            "future": (now + timedelta(days=3)).replace(tzinfo=None).isoformat(sep=" "),
        },
    )
    total_events = prospects * events_per_prospect
    events = (
        f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {total_events})"
    )
    db.session.execute(
        sa.text(f"""{events}
        INSERT INTO events (created_at, kind, prospect_id, lab_id, registration_id, reason, data)
        SELECT {stamp}, 'registration.status', 1 + (i % {prospects}), {lab.id},
            1 + (i % {prospects}), '', '{{}}' FROM n"""),
        {"created": created},
    )
    if postgres:
        for table in ("prospects", "registrations", "call_tasks", "events"):
            db.session.execute(
                sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            )
        db.session.commit()
        db.session.execute(sa.text("ANALYZE"))
    db.session.commit()
    return lab.id, callers


def turn(app: Flask, lab_id: int, callers: list[int], n: int) -> float:
    """One caller's turn: serve (timed, in ms), then log "no answer" (not timed)."""
    with app.app_context():
        caller = db.session.get(User, callers[n % len(callers)])
        start = time.perf_counter()
        served = call_queue.next_call(lab_id, caller)
        elapsed = (time.perf_counter() - start) * 1000
        if served is None:
            raise SystemExit("the queue ran dry: increase the data set")
        calls.log_outcome(served.registration, caller, calls.Outcome("no_answer"), served.task)
        db.session.remove()
    return elapsed


def build(url: str, prospects: int) -> tuple[Flask, int, list[int], float]:
    app = create_app(testing_config(url, "redis://127.0.0.1:1/0", Path(tempfile.mkdtemp())))
    with app.app_context():
        db.create_all()
        start = time.perf_counter()
        lab_id, callers = populate(prospects, 10)
        ids = [c.id for c in callers]
        db.session.remove()
    return app, lab_id, ids, time.perf_counter() - start


def summary(timings: list[float]) -> str:
    ordered = sorted(timings)
    return (
        f"median {statistics.median(timings):.2f} ms, "
        f"p95 {ordered[int(len(ordered) * 0.95)]:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    engine = "PostgreSQL" if args.database_url and "postgres" in args.database_url else "SQLite"
    print(f"Next call benchmark on {engine}: {TURNS} turns on each data set, interleaved")
    with (
        database(args.database_url, BENCH_DATABASE + "_small") as small_url,
        database(args.database_url, BENCH_DATABASE + "_large") as large_url,
    ):
        small = build(small_url, 1_000)
        large = build(large_url, 100_000)
        print(f"  data built: reference in {small[3]:.1f} s, large in {large[3]:.1f} s")
        small_times: list[float] = []
        large_times: list[float] = []
        # Alternate turns so that whatever else the machine does weighs on both alike.
        for n in range(TURNS):
            small_times.append(turn(*small[:3], n))
            large_times.append(turn(*large[:3], n))
        for app, *_ in (small, large):
            with app.app_context():
                db.engine.dispose()
    print(f"  reference   1,000 prospects,    10,000 events: {summary(small_times)}")
    print(f"  large     100,000 prospects, 1,000,000 events: {summary(large_times)}")
    ratio = statistics.median(large_times) / statistics.median(small_times)
    verdict = "within" if ratio <= 1.5 else "OVER"
    print(f"  ratio large/reference (median): {ratio:.2f}x, {verdict} the 1.5x goal")


if __name__ == "__main__":
    main()
