"""Benchmark of the inbound SMS webhook under load, next to a bare Flask endpoint.

    .venv/bin/python bench/webhook_bench.py --db postgresql     # base crm_hook on 127.0.0.1
    .venv/bin/python bench/webhook_bench.py --db sqlite         # a SQLite file under /tmp
    .venv/bin/python bench/webhook_bench.py --profile 300       # SQL round trips, where time goes
    PYTHONPATH=/tmp/proto .venv/bin/python bench/webhook_bench.py --app proto:app  # a variant

Two gunicorn servers with the same settings (2 sync workers; `--threads N`: 2 gthread workers
of N threads) on 127.0.0.1: the real app
(`wsgi:app`, CRM_ENV=production, Redis db 8) and, as the reference, a bare Flask app
(`bench.webhook_bench:bare_app`) answering the same path with a fixed TwiML. A second process
(aiohttp) sends realistic signed Twilio inbound POSTs (twilio's RequestValidator, unique
MessageSid, From spread over the prospects, a mix of "oui", "Non merci", "STOP"...):

1. max throughput: --concurrency connections for --seconds, per server;
2. fixed rate: --rate requests per second, open loop (scheduled by time, latency counted
   from the scheduled instant) for --seconds, per server; past 2 s of backlog (2 x rate
   requests outstanding) a slot is not sent and counted as an error ("shed"), so that an
   overloaded server cannot stretch the run;
3. duplicates (real app only): every MessageSid posted twice at the same instant.

After each phase one more request, queued behind the phase's backlog, waits for the server
to catch up; the CPU time of the gunicorn workers per request is measured over the phase
(PostgreSQL's own CPU not included). Then the database is checked: every MessageSid
answered 200 is stored exactly once, nothing else is stored, each stored message was
processed once (one "reply.received" event, none for an unknown number), and no pair of
duplicates was answered twice. Goals: real throughput at least half the bare one, p99 under
100 ms at 100 requests per second, no 5xx, every message stored once.

`--floor` adds a third server with the same settings and one more max-throughput phase: the
floor app (bench/webhook_floor.py), which only checks the signature, stores the raw message
once and answers a fixed TwiML. Its ratio to the bare endpoint is the best any correct
webhook could reach here.

PostgreSQL: the schema of the base crm_hook (--pg-url) is dropped and recreated; SQLite: a
fresh file in a temporary folder, deleted at the end. The gunicorn processes are always
stopped (their process group only) before the benchmark exits.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import multiprocessing
import os
import pstats
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flask import Flask, Response  # noqa: E402

from bench import webhook_floor  # noqa: E402
from bench.reply_mix import BODIES, inbound_params  # noqa: E402
from crm.messaging.webhooks import INBOUND_PATH  # noqa: E402

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Merci</Message></Response>'
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/crm_hook"
REDIS_URL = "redis://127.0.0.1:6379/8"
TO_NUMBER = "+33757000000"
ACCOUNT_SID = "AC" + "b" * 32

bare_app = Flask("bare_twiml")


@bare_app.post(INBOUND_PATH)
def bare_inbound() -> Response:
    return Response(TWIML, mimetype="application/xml")


# --- the load process -----------------------------------------------------------------------


def load_phase(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one phase (in the load process) and return its raw results."""
    return asyncio.run(_load(spec))


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp
    from twilio.request_validator import RequestValidator

    rng = random.Random(spec["seed"])
    validator = RequestValidator(spec["token"])
    url, phones = spec["url"], spec["phones"]
    # (sid, HTTP status, ms, answered with a <Message>); status 0: no answer (timeout, reset),
    # -1: not sent, the server being too far behind (more than max_inflight outstanding).
    results: list[tuple[str, int, float, bool]] = []
    failures: Counter[str] = Counter()

    def request() -> tuple[dict[str, str], dict[str, str]]:
        params = inbound_params(rng, phones, TO_NUMBER, ACCOUNT_SID)
        signature = validator.compute_signature(spec["public_url"], params)
        return params, {"X-Twilio-Signature": signature}

    inflight = 0

    async def send(
        session: aiohttp.ClientSession, params: dict[str, str], headers: dict[str, str], t0: float
    ) -> None:
        nonlocal inflight
        inflight += 1
        try:
            async with session.post(url, data=params, headers=headers) as response:
                body = await response.read()
                status = response.status
        except Exception as exc:  # a refused, reset or timed-out connection
            failures[type(exc).__name__] += 1
            status, body = 0, b""
        inflight -= 1
        elapsed = (time.perf_counter() - t0) * 1000
        results.append((params["MessageSid"], status, elapsed, b"<Message>" in body))

    timeout = aiohttp.ClientTimeout(total=spec.get("timeout", 15))
    connector = aiohttp.TCPConnector(limit=0)
    lag = 0.0
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        start = time.perf_counter()
        if spec["mode"] == "closed":
            deadline, budget = start + spec["seconds"], spec.get("requests") or 10**9
            issued = 0

            async def worker() -> None:
                nonlocal issued
                while time.perf_counter() < deadline and issued < budget:
                    issued += 1
                    params, headers = request()
                    await send(session, params, headers, time.perf_counter())

            await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
        else:
            copies = 2 if spec.get("duplicate") else 1
            # Open loop, but bounded: past 2 s of backlog the server is over capacity anyway,
            # and an unbounded queue would only make the following phases wait for it.
            max_inflight = max(50, int(2 * spec["rate"]))
            slots = int(spec["rate"] * spec["seconds"]) // copies
            prepared = [request() for _ in range(slots)]  # signed before the clock starts
            start = time.perf_counter()
            tasks = []
            for i, (params, headers) in enumerate(prepared):
                due = start + i * copies / spec["rate"]
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                lag = max(lag, time.perf_counter() - due)
                if inflight >= max_inflight:
                    results.extend((params["MessageSid"], -1, 0.0, False) for _ in range(copies))
                    continue
                for _ in range(copies):
                    tasks.append(asyncio.create_task(send(session, params, headers, due)))
            await asyncio.gather(*tasks)
        duration = time.perf_counter() - start
    return {"results": results, "failures": dict(failures), "duration": duration, "lag": lag}


# --- database --------------------------------------------------------------------------------


def database_url(args: argparse.Namespace, workdir: Path) -> str:
    if args.db == "sqlite":
        return f"sqlite:///{workdir / 'hook.sqlite3'}"
    url = sa.engine.make_url(args.pg_url)
    if url.database in (None, "", "test", "postgres"):
        raise SystemExit(f"Refusing to reset the schema of {url.database!r}: use crm_hook.")
    return args.pg_url


def bench_app(url: str, workdir: Path) -> Flask:
    from crm import create_app
    from crm.config import testing_config

    return create_app(testing_config(url, REDIS_URL, workdir))


def prepare(url: str, workdir: Path, prospects: int) -> list[str]:
    """Fresh schema (with the floor app's table), one recruiting lab in a month, N prospects
    (SMS allowed) registered."""
    from crm.extensions import db
    from crm.models import Lab, Prospect, Source
    from crm.services.registrations import register_many
    from crm.timeutil import utcnow

    app = bench_app(url, workdir)
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(sa.text("CREATE SCHEMA public"))
        db.create_all()
        webhook_floor.metadata.create_all(db.engine)
        now = utcnow()
        source = Source(name="Bench webhook")
        lab = Lab(
            title="Lab démarches en ligne",
            venue="20 avenue de Ségur, Paris",
            starts_at=now + timedelta(days=30),
            ends_at=now + timedelta(days=30, hours=3),
            status="recruiting",
        )
        db.session.add_all([source, lab])
        db.session.flush()
        phones = [f"+336{10_000_000 + i * 37:08d}" for i in range(prospects)]
        people = [
            Prospect(
                first_name=f"Prénom{i}",
                last_name=f"Nom{i}",
                phone=phone,
                source_id=source.id,
                allow_sms=True,
                allow_phone=True,
                qualification="yes",
            )
            for i, phone in enumerate(phones)
        ]
        db.session.add_all(people)
        db.session.flush()
        register_many(lab.id, [p.id for p in people], None, "Banc webhook")
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            db.session.execute(sa.text("ANALYZE"))
            db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return phones


def verify(url: str, workdir: Path, real: list[dict[str, Any]], dup: dict[str, Any]) -> dict:
    """What the database holds against what the real app answered."""
    from crm.extensions import db
    from crm.models import Event, InboundMessage

    posted = [r for phase in real for r in phase["results"] if r[1] != -1]
    answered = {sid for sid, status, _, _ in posted if status == 200}
    gave_up = {sid for sid, status, _, _ in posted if status == 0} - answered
    app = bench_app(url, workdir)
    with app.app_context():
        rows = int(db.session.scalar(sa.select(sa.func.count()).select_from(InboundMessage)))
        distinct = int(
            db.session.scalar(sa.select(sa.func.count(InboundMessage.message_sid.distinct())))
        )
        stored = set(db.session.scalars(sa.select(InboundMessage.message_sid)))
        outcomes = dict(
            db.session.execute(
                sa.select(InboundMessage.outcome, sa.func.count()).group_by(InboundMessage.outcome)
            ).all()
        )
        events = int(
            db.session.scalar(
                sa.select(sa.func.count()).select_from(Event).where(Event.kind == "reply.received")
            )
        )
        db.session.remove()
        db.engine.dispose()
    dup_posted = [r for r in dup["results"] if r[1] != -1]
    dup_ok = Counter(sid for sid, status, _, _ in dup_posted if status == 200)
    replies = Counter(sid for sid, status, _, has in dup_posted if status == 200 and has)
    return {
        "posted": len({sid for sid, _, _, _ in posted}),
        "answered_200": len(answered),
        "rows": rows,
        "distinct": distinct,
        "missing": len(answered - stored),
        # The client gave up (timeout) but the server, behind, stored and processed it later:
        # what Twilio's retry would find (answered once, not processed again).
        "stored_after_timeout": len((stored - answered) & gave_up),
        "stored_unexplained": len(stored - answered - gave_up),
        "outcomes": outcomes,
        "events": events,
        # Every processed message writes one event, except one from an unknown number.
        "processed": rows - outcomes.get("received", 0) - outcomes.get("unknown_sender", 0),
        "dup_sids": len({sid for sid, _, _, _ in dup_posted}),
        "dup_both_200": sum(1 for n in dup_ok.values() if n == 2),
        "dup_stored": len(set(dup_ok) & stored),
        "dup_answered": len(dup_ok),
        "dup_answered_twice": sum(1 for n in replies.values() if n > 1),
    }


# --- servers ---------------------------------------------------------------------------------


def workers_cpu(master: int) -> float:
    """CPU seconds (user + system) used so far by the gunicorn workers of `master`."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:  # fields[1] is the parent pid
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_options(threads: int) -> list[str]:
    if threads > 1:
        return ["--workers=2", "--worker-class=gthread", f"--threads={threads}"]
    return ["--workers=2", "--worker-class=sync"]


def start_server(
    target: str, port: int, env: dict[str, str], log: Path, threads: int
) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        *worker_options(threads),
        f"--bind=127.0.0.1:{port}",
        "--backlog=2048",
        "--timeout=30",
        "--graceful-timeout=5",
        "--log-level=warning",
        f"--error-logfile={log}",
        target,
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


def wait_ready(port: int, proc: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn on port {port} exited ({proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"gunicorn on port {port} did not start in {seconds:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    """Stop the gunicorn master and its workers (their own process group only)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


# --- report ----------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def summarise(phase: dict[str, Any]) -> dict[str, Any]:
    statuses = Counter(status for _, status, _, _ in phase["results"])
    latencies = [ms for _, status, ms, _ in phase["results"] if status != -1]
    ok = statuses.get(200, 0)
    return {
        "requests": len(phase["results"]),
        "rps": ok / phase["duration"] if phase["duration"] else 0.0,
        "p50": pct(latencies, 0.50),
        "p95": pct(latencies, 0.95),
        "p99": pct(latencies, 0.99),
        "errors": len(phase["results"]) - ok,
        "5xx": sum(n for s, n in statuses.items() if s >= 500),
        "shed": statuses.get(-1, 0),
        "statuses": dict(statuses),
        "failures": phase["failures"],
        "lag": phase["lag"] * 1000,
        "cpu": phase["cpu_ms"],
    }


def row(name: str, s: dict[str, Any]) -> str:
    return (
        f"  {name:<28} {s['requests']:>6} {s['rps']:>8.1f} {s['p50']:>8.1f} {s['p95']:>8.1f} "
        f"{s['p99']:>8.1f} {s['errors']:>6} {s['5xx']:>5} {s['shed']:>5} {s['cpu']:>7.1f}"
    )


def log_errors(log: Path) -> Counter[str]:
    """Exception lines of a gunicorn error log ("database is locked", ...)."""
    found: Counter[str] = Counter()
    if log.exists():
        for line in log.read_text(errors="replace").splitlines():
            match = re.match(r"^([\w.]+(?:Error|Exception)): (.{0,80})", line)
            if match:
                found[f"{match.group(1)}: {match.group(2)}"] += 1
    return found


# --- profile ---------------------------------------------------------------------------------


def profile(args: argparse.Namespace, url: str, workdir: Path, phones: list[str]) -> None:
    """N signed requests through the Flask test client under cProfile (in this process)."""
    from twilio.request_validator import RequestValidator

    token, public = "bench-profile-token", "http://localhost"
    app = bench_app(url, workdir)
    app.config.update(TWILIO_AUTH_TOKEN=token, PUBLIC_BASE_URL=public)
    client = app.test_client()
    rng = random.Random(7)
    texts, weights = zip(*BODIES, strict=True)
    validator = RequestValidator(token)

    def one() -> None:
        params = {
            "MessageSid": "SM" + secrets.token_hex(16),
            "AccountSid": ACCOUNT_SID,
            "From": rng.choice(phones),
            "To": TO_NUMBER,
            "Body": rng.choices(texts, weights)[0],
            "NumMedia": "0",
        }
        headers = {"X-Twilio-Signature": validator.compute_signature(public + INBOUND_PATH, params)}
        assert client.post(INBOUND_PATH, data=params, headers=headers).status_code == 200

    for _ in range(20):  # warm up: templates, connections, mapper configuration
        one()
    with app.app_context():
        from crm.extensions import db

        engine = db.engine
    # Database round trips of one request: statements (SAVEPOINT and RELEASE included) and
    # commits, counted on an unprofiled pass that also gives the time and CPU per request.
    trips = Counter()
    sa.event.listen(engine, "before_cursor_execute", lambda *_: trips.update(["statements"]))
    sa.event.listen(engine, "commit", lambda *_: trips.update(["commits"]))
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.profile):
        one()
    wall = (time.perf_counter() - start) * 1000 / args.profile
    cpu_ms = (time.process_time() - cpu) * 1000 / args.profile
    print(
        f"Sans profileur : {wall:.1f} ms et {cpu_ms:.1f} ms CPU par requête (client de test), "
        f"{trips['statements'] / args.profile:.1f} instructions SQL et "
        f"{trips['commits'] / args.profile:.2f} commits par requête"
    )
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for _ in range(args.profile):
        one()
    profiler.disable()
    per_request = (time.perf_counter() - start) * 1000 / args.profile
    print(f"Profil : {args.profile} requêtes via le client de test, {per_request:.1f} ms chacune")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
    print(out.getvalue())
    engine.dispose()


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL base (schema reset)")
    parser.add_argument("--seconds", type=float, default=20, help="length of each phase")
    parser.add_argument("--rate", type=float, default=100, help="requests/s, fixed-rate phase")
    parser.add_argument("--prospects", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8, help="max-throughput phase")
    parser.add_argument("--dup-seconds", type=float, default=5, help="duplicate phase")
    parser.add_argument("--profile", type=int, default=0, help="only profile N requests")
    parser.add_argument("--app", default="wsgi:app", help="the webhook server's WSGI app")
    parser.add_argument("--threads", type=int, default=1, help="> 1: gthread workers")
    parser.add_argument("--floor", action="store_true", help="also the floor app's throughput")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="crm_hook_"))
    procs: list[subprocess.Popen] = []
    try:
        url = database_url(args, workdir)
        t0 = time.perf_counter()
        phones = prepare(url, workdir, args.prospects)
        engine = "PostgreSQL" if args.db == "postgresql" else "SQLite"
        print(
            f"Webhook benchmark on {engine}: {args.prospects:,} prospects registered in "
            f"{time.perf_counter() - t0:.1f} s; gunicorn {' '.join(worker_options(args.threads))}"
            " per server"
        )
        if args.profile:
            profile(args, url, workdir, phones)
            return
        run(args, url, workdir, phones, procs)
    finally:
        for proc in procs:
            stop_server(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def run(
    args: argparse.Namespace,
    url: str,
    workdir: Path,
    phones: list[str],
    procs: list[subprocess.Popen],
) -> None:
    token = secrets.token_hex(16)
    ports = {"bare": free_port(), "real": free_port()}
    if args.floor:
        ports["floor"] = free_port()
    logs = {name: workdir / f"gunicorn-{name}.log" for name in ports}
    env = {
        **os.environ,
        "CRM_ENV": "production",
        "DATABASE_URL": url,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": secrets.token_hex(32),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{ports['real']}",
        "TWILIO_AUTH_TOKEN": token,
        "CRM_SMS_BACKEND": "outbox",
        "CRM_EMAIL_BACKEND": "outbox",
        "CRM_INSTANCE_DIR": str(workdir),
        "FLOOR_PUBLIC_URL": f"http://127.0.0.1:{ports.get('floor')}{INBOUND_PATH}",
    }
    for key in ("TWILIO_ACCOUNT_SID", "TWILIO_SENDER", "TWILIO_BASE_URL", "SMTP_URL"):
        env.pop(key, None)
    targets = {
        "bare": "bench.webhook_bench:bare_app",
        "real": args.app,
        "floor": "bench.webhook_floor:create_app()",
    }
    masters: dict[str, int] = {}
    for name, port in ports.items():
        procs.append(start_server(targets[name], port, env, logs[name], args.threads))
        masters[name] = procs[-1].pid
    for proc, port in zip(procs, ports.values(), strict=True):
        wait_ready(port, proc)

    def spec(name: str, mode: str, seed: int, **extra: Any) -> dict[str, Any]:
        address = f"http://127.0.0.1:{ports[name]}{INBOUND_PATH}"
        return {
            "url": address,
            "public_url": address,
            "token": token,
            "phones": phones,
            "mode": mode,
            "seed": seed,
            "seconds": args.seconds,
            "concurrency": args.concurrency,
            "rate": args.rate,
            **extra,
        }

    real: list[dict[str, Any]] = []
    results: dict[str, dict[str, Any]] = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as load:
        for name in ports:  # warm up both servers (imports, connections), not reported
            warm = load.submit(
                load_phase, spec(name, "closed", 1, requests=40, concurrency=2, seconds=30)
            ).result()
            if name == "real":
                real.append(warm)
        plan = [
            ("bare", "closed", f"bare, {args.concurrency} connections"),
            ("real", "closed", f"webhook, {args.concurrency} connections"),
            ("bare", "open", f"bare, {args.rate:g} req/s"),
            ("real", "open", f"webhook, {args.rate:g} req/s"),
        ]
        plan.append(("real", "dup", f"webhook, duplicates, {args.rate:g} req/s"))
        if args.floor:
            plan.append(("floor", "closed", f"floor, {args.concurrency} connections"))
        for seed, (name, mode, label) in enumerate(plan, start=2):
            cpu = workers_cpu(masters[name])
            if mode == "dup":
                phase = spec(name, "open", seed, seconds=args.dup_seconds, duplicate=True)
            else:
                phase = spec(name, mode, seed)
            outcome = load.submit(load_phase, phase).result()
            # One request queued behind whatever the server still has to do: when it is
            # answered, the backlog of this phase is gone and the next phase starts clean.
            drain = spec(name, "closed", seed + 50, requests=1, concurrency=1, timeout=120)
            drained = load.submit(load_phase, {**drain, "seconds": 120}).result()
            posted = sum(1 for r in outcome["results"] if r[1] != -1) + 1
            outcome["cpu_ms"] = (workers_cpu(masters[name]) - cpu) * 1000 / posted
            results[label] = outcome
            if name == "real":
                real.extend([outcome, drained])
            if mode == "dup":
                dup = outcome
    for proc in procs:
        stop_server(proc)
    report(args, url, workdir, real, dup, results, logs)


def report(
    args: argparse.Namespace,
    url: str,
    workdir: Path,
    real: list[dict[str, Any]],
    dup: dict[str, Any],
    results: dict[str, dict[str, Any]],
    logs: dict[str, Path],
) -> None:
    check = verify(url, workdir, real, dup)
    summaries = {label: summarise(phase) for label, phase in results.items()}
    print(f"  {'phase':<28} {'sent':>6} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    print(
        f"  {'':<28} {'':>6} {'(200)':>8} {'':>8} {'':>8} {'':>8} {'errors':>6} {'5xx':>5} "
        f"{'shed':>5} {'CPU ms':>7}"
    )
    for label, s in summaries.items():
        print(row(label, s))
    labels = list(summaries)
    bare_max, real_max = summaries[labels[0]], summaries[labels[1]]
    at_rate, dups = summaries[labels[3]], summaries[labels[4]]
    ratio = real_max["rps"] / bare_max["rps"] if bare_max["rps"] else 0.0
    for label, s in summaries.items():
        extra = {k: v for k, v in s["statuses"].items() if k != 200}
        if extra or s["failures"]:
            print(f"  {label}: statuses {extra}, connection failures {s['failures']}")
    lags = ", ".join(f"{s['lag']:.1f}" for label, s in summaries.items() if "req/s" in label)
    print(f"  load generator's worst scheduling lag in the fixed-rate phases (ms): {lags}")
    print(
        f"  stored: {check['rows']} rows, {check['distinct']} distinct MessageSid; "
        f"{check['posted']} MessageSid posted, {check['answered_200']} answered 200; "
        f"answered but not stored {check['missing']}, stored after the client timed out "
        f"{check['stored_after_timeout']}, stored otherwise {check['stored_unexplained']}"
    )
    print(
        f"  processed once: {check['processed']} processed rows (not unknown numbers), "
        f"{check['events']} reply.received events; outcomes {check['outcomes']}"
    )
    print(
        f"  duplicates: {check['dup_sids']} MessageSid posted twice at once, "
        f"{check['dup_both_200']} with both copies answered 200, {check['dup_stored']} of the "
        f"{check['dup_answered']} answered stored, {check['dup_answered_twice']} answered "
        "twice with a reply"
    )
    for name, log in logs.items():
        for line, n in log_errors(log).most_common(5):
            print(f"  {name} server log: {n} x {line}")
    fivexx = sum(s["5xx"] for s in summaries.values())
    stored_once = (
        check["rows"] == check["distinct"]
        and check["missing"] == check["stored_unexplained"] == 0
        and check["processed"] == check["events"]
        and check["dup_stored"] == check["dup_answered"]
        and check["dup_answered_twice"] == 0
    )
    exact = check["rows"] == check["answered_200"]
    goals = [
        (f"throughput webhook/bare {ratio:.2f} (goal >= 0.5)", ratio >= 0.5),
        (f"p99 at {args.rate:g} req/s {at_rate['p99']:.1f} ms (goal < 100)", at_rate["p99"] < 100),
        (f"5xx responses: {fivexx} (goal 0)", fivexx == 0),
        ("every message answered 200 stored once, processed once", stored_once),
        (f"rows {check['rows']} == MessageSid answered 200 {check['answered_200']}", exact),
        (
            f"duplicates phase: {dups['errors'] - dups['shed']} failed requests "
            f"({dups['shed']} not sent, server behind), none answered twice",
            dups["errors"] == dups["shed"] and check["dup_answered_twice"] == 0,
        ),
    ]
    for text, met in goals:
        print(f"  {'met   ' if met else 'MISSED'} {text}")
    if len(labels) > 5:
        floor = summaries[labels[5]]
        rows, distinct = webhook_floor.stored(url)
        print(
            f"  floor app: {floor['rps']:.1f} req/s, ratio floor/bare "
            f"{floor['rps'] / bare_max['rps']:.2f} (the best a webhook could reach here), "
            f"webhook/floor {real_max['rps'] / floor['rps']:.2f}; {rows} rows stored, "
            f"{distinct} distinct MessageSid"
        )


if __name__ == "__main__":
    main()
