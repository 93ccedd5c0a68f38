"""Benchmark of the dispatcher's own cost per pass at 1,000,000 follow-up rows.

    .venv/bin/python bench/dispatcher_bench.py --db postgresql
    .venv/bin/python bench/dispatcher_bench.py --db sqlite --rows 200000

The table holds `--rows` follow-ups (250,000 registrations × 4 invitation steps): 94 % in a
final status (sent, delivered, skipped, cancelled, failed), 5 % scheduled in the future, 500
queued long ago whose job is alive in Redis (the stuck-row check fetches each job) and, for
one case, 500 due. Timed, median of PASSES passes: dispatcher.run() with nothing due, with
500 due (claimed and enqueued, then put back), and its three queries alone; next to a
primary-key lookup and a count(*) of the table, measured in the same run, and two proposed
replacements (one pipeline to enqueue the claimed rows' jobs, one to read the stuck jobs'
statuses). It prints the plan of the claim query: EXPLAIN ANALYZE on PostgreSQL (in a
rolled-back transaction) to show the index used, EXPLAIN QUERY PLAN on SQLite. PostgreSQL uses
the database `crm_bench2` (dropped and created); Redis database 13.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from redis import Redis  # noqa: E402
from rq import Queue  # noqa: E402

from crm import create_app  # noqa: E402
from crm.config import normalise_database_url, testing_config  # noqa: E402
from crm.extensions import db  # noqa: E402
from crm.models import FollowUp, Lab, Source  # noqa: E402
from crm.services import dispatcher, sequences  # noqa: E402
from crm.timeutil import UTCDateTime, utcnow  # noqa: E402
from workers.queues import MESSAGES  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench2"
REDIS = "redis://127.0.0.1:6379/13"
PASSES = 9
DUE = 500
STUCK = 500


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="crm-dispatcher-bench-")
        try:
            yield f"sqlite:///{folder}/bench.sqlite3"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    url = normalise_database_url(POSTGRES)
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def populate(rows: int) -> None:
    """Set-based inserts: prospects, registrations, then 4 follow-ups per registration."""
    now = utcnow()
    source = Source(name="Bench")
    lab = Lab(
        title="Lab",
        starts_at=now + timedelta(days=60),
        ends_at=now + timedelta(days=60, hours=3),
        status="recruiting",
    )
    db.session.add_all([source, lab])
    db.session.flush()
    steps = [s.id for s in sequences.default_sequence("invitation").steps]
    db.session.commit()
    people = rows // len(steps)
    series = f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {people})"
    params = {
        "now": sa.bindparam("now", now, type_=UTCDateTime()),
        "past": sa.bindparam("past", now - timedelta(days=20), type_=UTCDateTime()),
        "future": sa.bindparam("future", now + timedelta(days=20), type_=UTCDateTime()),
    }
    # Statuses by row number: 5 % scheduled in the future, the rest final (mixed).
    status = """CASE WHEN (i * 4 + k) % 20 = 0 THEN 'scheduled'
        WHEN (i * 4 + k) % 20 < 12 THEN 'sent' WHEN (i * 4 + k) % 20 < 15 THEN 'delivered'
        WHEN (i * 4 + k) % 20 < 18 THEN 'skipped' WHEN (i * 4 + k) % 20 = 18 THEN 'cancelled'
        ELSE 'failed' END"""
    steps_values = " UNION ALL ".join(f"SELECT {k} AS k, {s} AS step" for k, s in enumerate(steps))
    statements = [
        f"""{series} INSERT INTO prospects (id, first_name, last_name, organisation, profile,
            notes, source_id, qualification, disqualification_reason, allow_sms, allow_email,
            allow_phone, search_text, version, created_at, updated_at)
        SELECT i, 'P', 'N' || i, '', '', '', {source.id}, 'yes', '', TRUE, TRUE, TRUE, '', 1,
            :now, :now FROM n""",
        f"""{series} INSERT INTO registrations (id, prospect_id, lab_id, status, call_bucket,
            call_rank, version, created_at, updated_at)
        SELECT i, i, {lab.id}, 'contacted', 3, 0, 1, :now, :now FROM n""",
        f"""{series}, s(k, step) AS ({steps_values})
        INSERT INTO followups (registration_id, step_id, due_at, status, reason, attempts,
            sent_at, created_at, updated_at)
        SELECT i, step, CASE WHEN (i * 4 + k) % 20 = 0 THEN :future ELSE :past END, {status},
            '', 0, CASE WHEN (i * 4 + k) % 20 BETWEEN 1 AND 14 THEN :past END, :past, :past
        FROM n CROSS JOIN s""",
    ]
    for statement in statements:
        used = [p for name, p in params.items() if f":{name}" in statement]
        db.session.execute(sa.text(statement).bindparams(*used))
    db.session.commit()
    if db.session.get_bind().dialect.name == "postgresql":
        for table in ("prospects", "registrations"):
            db.session.execute(
                sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {people})")
            )
        db.session.commit()


def final_ids(count: int, offset: int) -> list[int]:
    return list(
        db.session.scalars(
            sa.select(FollowUp.id)
            .where(FollowUp.status == "sent")
            .order_by(FollowUp.id)
            .offset(offset)
            .limit(count)
        )
    )


def make_stuck(redis: Redis) -> None:
    """STUCK rows queued long ago whose job is still waiting in Redis: every pass fetches
    their jobs (and leaves them alone)."""
    ids = final_ids(STUCK, 0)
    long_ago = utcnow() - dispatcher.STUCK_AFTER - timedelta(minutes=5)
    db.session.execute(
        sa.update(FollowUp)
        .where(FollowUp.id.in_(ids))
        .values(status="queued", queued_at=long_ago, sent_at=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    queue = Queue(MESSAGES, connection=redis)
    for followup_id in ids:
        queue.enqueue(dispatcher.SEND_JOB, followup_id, job_id=dispatcher.job_id(followup_id))


def set_due(ids: list[int]) -> None:
    db.session.execute(
        sa.update(FollowUp)
        .where(FollowUp.id.in_(ids))
        .values(status="scheduled", due_at=utcnow() - timedelta(minutes=1), queued_at=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def timed(fn: Callable[[], Any], before: Callable[[], None] | None = None) -> list[float]:
    """Milliseconds of PASSES calls of fn (before() runs untimed before each)."""
    times = []
    for _ in range(PASSES):
        if before:
            before()
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
        db.session.remove()
    return times


def line(label: str, times: list[float]) -> None:
    print(f"  {label:<52} median {statistics.median(times):8.2f} ms, max {max(times):8.2f} ms")


def enqueue_many(redis: Redis) -> list[float]:
    """The proposed enqueue: the claimed rows' jobs sent in one pipeline."""
    queue = Queue("bench-enqueue-many", connection=redis)
    times = []
    for n in range(PASSES):
        jobs = [
            Queue.prepare_data(dispatcher.SEND_JOB, (i,), job_id=f"bench-{n}-{i}", result_ttl=600)
            for i in range(DUE)
        ]
        t = time.perf_counter()
        with redis.pipeline() as pipe:
            queue.enqueue_many(jobs, pipeline=pipe)
            pipe.execute()
        times.append((time.perf_counter() - t) * 1000)
    queue.delete(delete_jobs=True)
    return times


def statuses(redis: Redis) -> list[float]:
    """The proposed stuck-row check: every job's status in one round trip."""
    ids = [
        dispatcher.job_id(i)
        for i in db.session.scalars(
            sa.select(FollowUp.id).where(FollowUp.status == "queued").limit(STUCK)
        )
    ]
    times = []
    for _ in range(PASSES):
        t = time.perf_counter()
        with redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hget(f"rq:job:{job_id}", "status")
            alive = [s for s in pipe.execute() if s in (b"queued", b"started", b"scheduled")]
        times.append((time.perf_counter() - t) * 1000)
    if len(alive) != len(ids):  # the same answer as the current check, or the figure is moot
        raise SystemExit(f"expected {len(ids)} live jobs, found {len(alive)}")
    return times


def explain_claim() -> None:
    """The claim query's plan as the dispatcher sends it: EXPLAIN ANALYZE in a rolled-back
    transaction on PostgreSQL, EXPLAIN QUERY PLAN (not executed) on SQLite."""
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE FOLLOWUPS"):
            captured.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", capture)
    try:
        dispatcher.claim_due(utcnow(), dispatcher.BATCH_SIZE)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", capture)
    db.session.remove()
    statement, parameters = captured[0]
    postgres = db.engine.dialect.name == "postgresql"
    prefix = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " if postgres else "EXPLAIN QUERY PLAN "
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(prefix + statement, parameters)
        plan = [row[0] if postgres else row[-1] for row in cursor.fetchall()]
        raw.rollback()
    finally:
        raw.close()
    print(f"  {prefix.strip()} of the claim query (nothing due):")
    for row in plan:
        print(f"    {row}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--redis-url", default=REDIS)
    args = parser.parse_args()
    redis = Redis.from_url(args.redis_url)
    redis.flushdb()
    print(f"Dispatcher benchmark on {args.db}: {args.rows:,} follow-up rows, {PASSES} passes")
    with database(args.db) as url:
        app = create_app(testing_config(url, args.redis_url, Path(tempfile.mkdtemp())))
        with app.app_context():
            db.create_all()
            t = time.perf_counter()
            populate(args.rows)
            if db.engine.dialect.name == "postgresql":
                db.session.execute(sa.text("ANALYZE"))
                db.session.commit()
            print(f"  data built in {time.perf_counter() - t:.1f} s", flush=True)
            line("dispatcher.run(), nothing due, nothing stuck", timed(dispatcher.run))
            make_stuck(redis)
            total = db.session.scalar(sa.select(sa.func.count(FollowUp.id)))
            middle = total // 2
            line("reference: primary-key lookup", timed(lambda: db.session.get(FollowUp, middle)))
            line(
                "reference: count(*) of followups",
                timed(lambda: db.session.scalar(sa.select(sa.func.count(FollowUp.id)))),
            )
            now = utcnow()
            line(
                "claim_due, nothing due",
                timed(lambda: dispatcher.claim_due(utcnow(), dispatcher.BATCH_SIZE)),
            )
            line(
                f"requeue_stuck ({STUCK} stuck rows, jobs alive)",
                timed(lambda: dispatcher.requeue_stuck(now)),
            )
            line("abandon_sending", timed(lambda: dispatcher.abandon_sending(now)))
            line("dispatcher.run(), nothing due", timed(dispatcher.run))
            due = final_ids(DUE, STUCK)
            queue = Queue(MESSAGES, connection=redis)

            def reset() -> None:
                for followup_id in due:
                    queue.remove(dispatcher.job_id(followup_id))
                    redis.delete(f"rq:job:{dispatcher.job_id(followup_id)}")
                set_due(due)

            results: list[int] = []
            line(
                f"dispatcher.run(), {DUE} due (claimed and enqueued)",
                timed(lambda: results.append(int(dispatcher.run()["enqueued"])), before=reset),
            )
            if set(results) != {DUE}:
                raise SystemExit(f"expected {DUE} enqueued per pass, got {results}")
            line(f"proposal: {DUE} jobs in one Queue.enqueue_many pipeline", enqueue_many(redis))
            line(f"proposal: {STUCK} stuck jobs' statuses in one pipeline", statuses(redis))
            explain_claim()
            db.session.remove()
            db.engine.dispose()
    redis.flushdb()


if __name__ == "__main__":
    main()
