"""Benchmark of the follow-up engine: N due SMS follow-ups dispatched and sent by 2 RQ workers.

    .venv/bin/python bench/followups_bench.py --db postgresql            # 100,000 rows
    .venv/bin/python bench/followups_bench.py --db sqlite --rows 5000
    .venv/bin/python bench/followups_bench.py --db postgresql --rows 2000 --profile

In one run, with the same worker processes' command (`rq worker --burst`, 2 processes):
1. the reference: N no-op RQ jobs (workers.jobs.noop), enqueued beforehand, drained;
2. N due follow-ups: the dispatcher (crm.services.dispatcher.run, back to back: at most
   10,000 rows a pass) claims and enqueues them while the workers send them through the real
   `twilio` client to the fake Twilio server (tests/fakes) on 127.0.0.1.
Then it checks that every row ended sent, or skipped / failed with a reason, that the fake
provider got exactly one request per sent row, none twice for a number, and one Message per
sent row. `--profile` instead times the send job's parts in this process (no RQ).

`--floor` adds a second reference between the two: the same rows sent by the same dispatcher
and workers with a job that does only the steps the issue names for a send
(bench/send_floor.py: no rule, no Message, no event). Its ratio to the bare jobs is the best
any correct send job could reach here; the rows are then set back to `scheduled`.

The send window is open all week and all day, and CRM_SMS_RATE_PER_SECOND is 1,000,000: the
production pacing (1 SMS/s per sender, shared through Redis) would make this measure the pacer.
Each person gets one message, so the pressure cap never applies. SQLite uses a file under
/tmp, PostgreSQL the database `crm_bench` (dropped and created); Redis uses database 12.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flask import Flask  # noqa: E402
from redis import Redis  # noqa: E402
from rq import Queue  # noqa: E402
from rq.registry import FailedJobRegistry  # noqa: E402

from bench import send_floor  # noqa: E402
from crm import create_app  # noqa: E402
from crm.config import normalise_database_url  # noqa: E402
from crm.extensions import db  # noqa: E402
from crm.models import FollowUp, Lab, Message, Source  # noqa: E402
from crm.services import dispatcher, sequences  # noqa: E402
from crm.timeutil import UTCDateTime, utcnow  # noqa: E402
from tests.fakes.twilio_server import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioServer  # noqa: E402
from workers.queues import MESSAGES  # noqa: E402

BIN = Path(sys.executable).parent
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/12"
WORKER_CLASS = "workers.worker.AppSimpleWorker"
OPEN = ("scheduled", "queued", "sending")
FINAL = ("sent", "skipped", "failed")
TIME_LIMIT = 45 * 60  # seconds for one phase: the run stops by itself


@contextmanager
def database(kind: str, name: str = "crm_bench") -> Iterator[str]:
    """A fresh database: a SQLite file under /tmp, or `name` on the local PostgreSQL."""
    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="crm-followups-bench-")
        try:
            yield f"sqlite:///{folder}/bench.sqlite3"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    url = normalise_database_url(POSTGRES).rsplit("/", 1)[0] + f"/{name}"
    admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def environment(url: str, redis_url: str, fake: FakeTwilioServer, folder: Path) -> dict[str, str]:
    """The workers' and the dispatcher's settings (the bench's app reads them too)."""
    return dict(
        os.environ,
        CRM_ENV="development",
        DATABASE_URL=url,
        REDIS_URL=redis_url,
        SECRET_KEY="followups-bench",
        CRM_INSTANCE_DIR=str(folder),
        PUBLIC_BASE_URL="https://crm.example.fr",
        CRM_SEND_DAYS="1-7",
        CRM_SEND_HOURS="00:00-23:59:59",
        CRM_SMS_RATE_PER_SECOND="1000000",
        CRM_SMS_BACKEND="twilio",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_SENDER="OpenLab",
        TWILIO_BASE_URL=fake.url,
    )


def populate(rows: int) -> None:
    """A far lab (recruiting), `rows` prospects allowing SMS, their registrations, and one
    due follow-up each on the invitation's first SMS step: set-based inserts."""
    now = utcnow()
    source = Source(name="Bench")
    lab = Lab(
        title="Lab de mesure",
        venue="Paris",
        starts_at=now + timedelta(days=365),
        ends_at=now + timedelta(days=365, hours=3),
        status="recruiting",
    )
    db.session.add_all([source, lab])
    db.session.flush()
    step = next(s for s in sequences.default_sequence("invitation").steps if s.channel == "sms")
    db.session.commit()
    series = f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})"
    stamp = sa.bindparam("now", now, type_=UTCDateTime())
    due = sa.bindparam("due", now - timedelta(minutes=1), type_=UTCDateTime())
    statements = [
        f"""{series} INSERT INTO prospects (id, first_name, last_name, phone, email, organisation,
            profile, notes, source_id, qualification, disqualification_reason, allow_sms,
            allow_email, allow_phone, search_text, version, created_at, updated_at)
        SELECT i, 'Camille', 'Nom ' || i, '+336' || CAST(10000000 + i AS TEXT),
            'p' || i || '@bench.fr', '', '', '', {source.id}, 'yes', '', TRUE, TRUE, TRUE,
            'nom ' || i, 1, :now, :now FROM n""",
        f"""{series} INSERT INTO registrations (id, prospect_id, lab_id, status, call_bucket,
            call_rank, next_call_at, version, created_at, updated_at)
        SELECT i, i, {lab.id}, 'to_contact', 3, 0, :now, 1, :now, :now FROM n""",
        f"""{series} INSERT INTO followups (id, registration_id, step_id, due_at, status, reason,
            attempts, created_at, updated_at)
        SELECT i, i, {step.id}, :due, 'scheduled', '', 0, :now, :now FROM n""",
    ]
    for statement in statements:
        used = [b for b in (stamp, due) if f":{b.key}" in statement]
        db.session.execute(sa.text(statement).bindparams(*used))
    if db.session.get_bind().dialect.name == "postgresql":
        for table in ("prospects", "registrations", "followups"):
            db.session.execute(
                sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {rows})")
            )
        db.session.commit()
        db.session.execute(sa.text("ANALYZE"))
    db.session.commit()


def start_workers(count: int, worker_class: str, redis_url: str, env: dict[str, str], logs: Path):
    command = [
        str(BIN / "rq"),
        "worker",
        "--burst",
        f"--worker-class={worker_class}",
        "--url",
        redis_url,
        MESSAGES,
    ]
    processes = []
    for n in range(count):
        log = (logs / f"worker-{n}-{time.monotonic_ns()}.log").open("w")
        processes.append(
            subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        )
    return processes


def stop(processes: list[subprocess.Popen[bytes]], grace: float = 30.0) -> None:
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(timeout=10)


class CpuMeter:
    """CPU seconds used during a phase by the worker processes (this process's children,
    counted once they have exited). PostgreSQL's share is not counted: its backends exit
    with the workers' connections, taking their CPU counters with them."""

    def __init__(self) -> None:
        self.start = self._workers()

    @staticmethod
    def _workers() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def report(self, label: str, jobs: int) -> str:
        used = self._workers() - self.start
        return f"  {label} worker CPU a job {1000 * used / jobs:.1f} ms"


def bare_rate(rows: int, args: argparse.Namespace, redis: Redis, env: dict[str, str], logs: Path):
    """The reference: `rows` jobs that do nothing, through the same workers."""
    queue = Queue(MESSAGES, connection=redis)
    for start in range(0, rows, 1000):
        data = [
            Queue.prepare_data("workers.jobs.noop", result_ttl=600)
            for _ in range(min(1000, rows - start))
        ]
        queue.enqueue_many(data)
    meter = CpuMeter()
    began = time.perf_counter()
    processes = start_workers(args.workers, args.worker_class, args.redis_url, env, logs)
    for process in processes:
        process.wait(timeout=TIME_LIMIT)
    elapsed = time.perf_counter() - began
    print(meter.report("bare jobs:", rows), flush=True)
    left = queue.count
    failed = FailedJobRegistry(queue=queue).count
    if left or failed:
        raise SystemExit(f"bare jobs: {left} left in the queue, {failed} failed")
    return elapsed


def open_rows() -> int:
    query = sa.select(sa.func.count()).select_from(FollowUp).where(FollowUp.status.in_(OPEN))
    count = int(db.session.scalar(query) or 0)
    db.session.rollback()  # a fresh snapshot next time
    return count


def send_all(
    app: Flask,
    args: argparse.Namespace,
    redis: Redis,
    env: dict[str, str],
    logs: Path,
    label: str = "follow-ups:",
):
    """Dispatcher passes back to back while the workers send; returns the wall time and the
    passes' durations. Burst workers that found the queue empty too early are started again."""
    passes: list[tuple[float, int]] = []
    restarts = 0
    queue = Queue(MESSAGES, connection=redis)
    meter = CpuMeter()
    with app.app_context():
        began = time.perf_counter()
        processes: list[subprocess.Popen[bytes]] = []
        exhausted = False
        while True:
            if not exhausted:
                t = time.perf_counter()
                enqueued = int(dispatcher.run()["enqueued"])
                passes.append((time.perf_counter() - t, enqueued))
                exhausted = enqueued < dispatcher.BATCH_SIZE * dispatcher.MAX_BATCHES
                db.session.remove()
            if not processes:
                processes = start_workers(
                    args.workers, args.worker_class, args.redis_url, env, logs
                )
            if exhausted:
                if open_rows() == 0:
                    break
                time.sleep(0.2)
            if all(p.poll() is not None for p in processes) and queue.count:
                restarts += 1  # they drained the queue faster than the dispatcher filled it
                processes = start_workers(
                    args.workers, args.worker_class, args.redis_url, env, logs
                )
            idle = all(p.poll() is not None for p in processes) and not queue.count
            if exhausted and idle and open_rows():
                break  # rows left open with no job: reported as lost below
            if time.perf_counter() - began > TIME_LIMIT:
                print("  time limit reached: stopping", flush=True)
                break
        elapsed = time.perf_counter() - began
    stop(processes)
    print(meter.report(label, args.rows), flush=True)
    return elapsed, passes, restarts


def floor_rate(
    app: Flask,
    args: argparse.Namespace,
    redis: Redis,
    env: dict[str, str],
    logs: Path,
    fake: FakeTwilioServer,
) -> float:
    """The second reference: the rows sent by the floor job (bench/send_floor.py), checked
    (each row sent once, one request per row), then set back to `scheduled` for the real run."""
    with patch.object(dispatcher, "SEND_JOB", send_floor.JOB):
        elapsed, _, _ = send_all(app, args, redis, env, logs, label="floor jobs:")
    with app.app_context():
        sent = db.session.scalar(
            sa.select(sa.func.count()).select_from(FollowUp).where(FollowUp.status == "sent")
        )
        numbers = Counter(m["to"] for m in fake.sent)
        if sent != args.rows or len(numbers) != args.rows or max(numbers.values()) != 1:
            raise SystemExit(f"floor jobs: {sent} rows sent, {len(fake.sent)} SMS accepted")
        db.session.execute(
            sa.update(FollowUp).values(
                status="scheduled", queued_at=None, sent_at=None, reason="", attempts=0
            )
        )
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE followups"))
        db.session.remove()
    fake.reset()
    redis.flushdb()
    return elapsed


def verify(fake: FakeTwilioServer, redis: Redis) -> dict[str, Any]:
    by_status = dict(
        db.session.execute(
            sa.select(FollowUp.status, sa.func.count()).group_by(FollowUp.status)
        ).all()
    )
    no_reason = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(FollowUp)
        .where(FollowUp.status.in_(("skipped", "failed")), FollowUp.reason == "")
    )
    messages = db.session.scalar(sa.select(sa.func.count(Message.id)))
    provider_ids = set(db.session.scalars(sa.select(Message.provider_id)))
    sent = fake.sent
    numbers = Counter(m["to"] for m in sent)
    return {
        "by_status": by_status,
        "lost": sum(n for s, n in by_status.items() if s not in FINAL) + int(no_reason or 0),
        "requests": len(fake.requests),
        "accepted": len(sent),
        "duplicates": sum(n - 1 for n in numbers.values() if n > 1),
        "messages": messages,
        "unmatched_sids": len({m["sid"] for m in sent} - provider_ids),
        "failed_jobs": FailedJobRegistry(queue=Queue(MESSAGES, connection=redis)).count,
    }


def profile_sends(app: Flask, count: int) -> None:
    """The send job's parts, timed in this process on claimed rows (no RQ): the first half
    with timers and a count of SQL statements, commits and pool checkouts (each one a
    `pool_pre_ping` round trip, then a BEGIN), the second half under cProfile."""
    from crm.messaging import sms
    from crm.services import sending

    totals: Counter[str] = Counter()

    def timed(module: Any, name: str) -> None:
        original: Callable[..., Any] = getattr(module, name)

        def wrapper(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                totals[name] += time.perf_counter() - t

        setattr(module, name, wrapper)

    for name in ("check", "_counts", "pace_sms", "_prepare", "_move", "deliver_sms", "_event"):
        timed(sending, name)
    timed(sms, "record_success")
    timed(sms.twilio_backend, "send")
    with app.app_context():
        dispatcher.run()
        ids = list(db.session.scalars(sa.select(FollowUp.id).where(FollowUp.status == "queued")))
        db.session.remove()
        half = len(ids) // 2
        measure_sends("send", ids[:half], sending.send, totals)
        profiler = cProfile.Profile()
        for followup_id in ids[half:]:
            profiler.enable()
            sending.send(followup_id)
            profiler.disable()
            db.session.remove()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
    stats.print_stats(r"crm/|psycopg/connection|sqlite3|socket|requests/sessions|twilio/", 40)
    print(out.getvalue())


def measure_sends(
    label: str, ids: list[int], send: Callable[[int], Any], totals: Counter[str]
) -> None:
    """Time the sends of `ids` and their parts; count their SQL statements and commits."""
    statements: Counter[str] = Counter()
    totals.clear()

    def count(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements[statement.split(None, 1)[0].upper()] += 1

    def commit(conn: Any) -> None:
        statements["COMMIT"] += 1

    def checkout(*args: Any) -> None:
        statements["pool checkout"] += 1

    sa.event.listen(db.engine, "before_cursor_execute", count)
    sa.event.listen(db.engine, "commit", commit)
    sa.event.listen(db.engine.pool, "checkout", checkout)
    began = time.perf_counter()
    for followup_id in ids:
        send(followup_id)
        db.session.remove()  # as the job's app context does
    elapsed = time.perf_counter() - began
    sa.event.remove(db.engine, "before_cursor_execute", count)
    sa.event.remove(db.engine, "commit", commit)
    sa.event.remove(db.engine.pool, "checkout", checkout)
    n = len(ids)
    print(f"  {label}: {n} sends in one process, {n / elapsed:.0f}/s, {1000 * elapsed / n:.2f} ms")
    print("    ms a send by part (nested parts are inside their callers):")
    for name, total in totals.most_common():
        print(f"      {name:<16} {1000 * total / n:6.2f}")
    per_send = ", ".join(f"{k} {v / n:.1f}" for k, v in statements.most_common())
    print(f"    SQL statements a send: {per_send}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default=WORKER_CLASS)
    parser.add_argument("--redis-url", default=REDIS)
    parser.add_argument("--pg-database", default="crm_bench", help="dropped and created")
    parser.add_argument("--skip-bare", action="store_true", help="only the follow-ups")
    parser.add_argument("--profile", action="store_true", help="time the send job's parts")
    parser.add_argument("--floor", action="store_true", help="also the floor job's rate")
    args = parser.parse_args()
    redis = Redis.from_url(args.redis_url)
    redis.flushdb()
    print(
        f"Follow-ups benchmark on {args.db}: {args.rows:,} rows, {args.workers} workers "
        f"({args.worker_class})",
        flush=True,
    )
    folder = Path(tempfile.mkdtemp(prefix="crm-followups-"))
    with FakeTwilioServer() as fake, database(args.db, args.pg_database) as url:
        env = environment(url, args.redis_url, fake, folder)
        os.environ.update(env)
        app = create_app()
        with app.app_context():
            db.create_all()
            t = time.perf_counter()
            populate(args.rows)
            print(f"  data built in {time.perf_counter() - t:.1f} s", flush=True)
            db.session.remove()
        if args.profile:
            profile_sends(app, args.rows)
            shutil.rmtree(folder, ignore_errors=True)
            return
        bare = None
        if not args.skip_bare:
            bare = bare_rate(args.rows, args, redis, env, folder)
            print(f"  bare RQ jobs: {args.rows / bare:.0f} jobs/s ({bare:.1f} s)", flush=True)
        redis.flushdb()
        floor = None
        if args.floor:
            floor = floor_rate(app, args, redis, env, folder, fake)
            print(f"  floor jobs: {args.rows / floor:.0f}/s ({floor:.1f} s)", flush=True)
        elapsed, passes, restarts = send_all(app, args, redis, env, folder)
        with app.app_context():
            result = verify(fake, redis)
            db.engine.dispose()
    shutil.rmtree(folder, ignore_errors=True)
    rate = args.rows / elapsed
    full = [d for d, n in passes if n == dispatcher.BATCH_SIZE * dispatcher.MAX_BATCHES]
    print(f"  follow-ups: {rate:.0f}/s ({elapsed:.1f} s from the first pass to the last row)")
    if bare is not None:
        ratio = rate / (args.rows / bare)
        verdict = "meets" if ratio >= 0.5 else "BELOW"
        print(f"  ratio follow-ups / bare jobs: {ratio:.2f} ({verdict} the 0.5 goal)")
        if floor is not None:
            print(
                f"  ratio floor jobs / bare jobs: {bare / floor:.2f} (the best a send could "
                f"reach here); follow-ups / floor jobs: {floor / elapsed:.2f}"
            )
    if full:
        print(
            f"  dispatcher: {len(passes)} passes, a 10,000-row pass "
            f"median {statistics.median(full):.2f} s (claim + enqueue)"
        )
    print(
        f"  first dispatcher pass (before the workers start): {passes[0][0]:.2f} s "
        f"for {passes[0][1]:,} rows"
    )
    print(f"  worker restarts (queue drained before the next pass): {restarts}")
    print(f"  rows by status: {result['by_status']}")
    print(
        f"  provider requests {result['requests']}, accepted {result['accepted']}, "
        f"Message rows {result['messages']}, sent rows {result['by_status'].get('sent', 0)}"
    )
    print(
        f"  duplicates {result['duplicates']}, lost {result['lost']}, "
        f"sids without a Message {result['unmatched_sids']}, failed jobs {result['failed_jobs']}"
    )


if __name__ == "__main__":
    main()
