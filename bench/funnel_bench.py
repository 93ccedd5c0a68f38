"""Benchmark of the dashboard's funnel per source at 100,000 prospects and 1,000,000 events.

    .venv/bin/python bench/funnel_bench.py                 # a temporary SQLite file
    .venv/bin/python bench/funnel_bench.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Data: 100,000 prospects from 5 sources, registered in a past lab (and 10,000 of them again
in the next lab), 1,000,000 status events, 200,000 calls by 5 callers, 100,000 messages
sent, 5,000 SMS replies, 3,000 opt-outs. Then, interleaved, ROUNDS times each:
`crm.services.funnel.compute(Scope("source"))` (the service: SQLAlchemy, one statement, rows
built in Python) and the same figures from one hand-written SQL query; prints the medians
and the ratio (goal: at most 2), and checks both give the same counts. On PostgreSQL the
benchmark uses its own database, `crm_bench_funnel`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flask import Flask  # noqa: E402

from bench.next_call_bench import database  # noqa: E402
from crm import create_app  # noqa: E402
from crm.config import testing_config  # noqa: E402
from crm.extensions import db  # noqa: E402
from crm.models import Lab, Source  # noqa: E402
from crm.redis_conn import get_redis  # noqa: E402
from crm.services import funnel, sequences  # noqa: E402
from crm.services.accounts import create_user  # noqa: E402
from crm.services.funnel import Scope  # noqa: E402
from crm.timeutil import utcnow  # noqa: E402
from tests.conftest import csrf_token  # noqa: E402

BENCH_DATABASE = "crm_bench_funnel"
PROSPECTS = 100_000
EVENTS = 1_000_000
ROUNDS = 7
STATUSES = ("contacted", "interested", "confirmed", "declined", "confirmed", "attended")

HAND_WRITTEN = """
WITH status_facts AS (
    SELECT registration_id,
        MAX(CASE WHEN to_status IN ('interested', 'confirmed', 'waitlisted', 'attended',
            'no_show') THEN 1 ELSE 0 END) AS interested,
        MIN(CASE WHEN to_status IN ('confirmed', 'attended', 'no_show') THEN created_at END)
            AS confirmed_at
    FROM events WHERE kind = 'registration.status' AND registration_id IS NOT NULL
    GROUP BY registration_id),
call_facts AS (
    SELECT registration_id, COUNT(*) AS calls, MIN(created_at) AS first_call,
        MAX(CASE WHEN outcome IN ('callback', 'confirmed', 'declined', 'interested',
            'not_potential_user') THEN 1 ELSE 0 END) AS answered
    FROM calls GROUP BY registration_id),
sent_facts AS (
    SELECT registration_id, COUNT(*) AS messages, MIN(sent_at) AS first_message
    FROM followups WHERE sent_at IS NOT NULL AND message_id IS NOT NULL
    GROUP BY registration_id),
reply_facts AS (
    SELECT registration_id FROM inbound_messages WHERE registration_id IS NOT NULL
    GROUP BY registration_id),
opt_out_facts AS (
    SELECT prospect_id FROM consents WHERE granted = FALSE AND from_person = TRUE
    GROUP BY prospect_id),
per_registration AS (
    SELECT p.source_id AS key,
        CASE WHEN r.status = 'attended' THEN 5
             WHEN s.confirmed_at IS NOT NULL THEN 4
             WHEN s.interested = 1 THEN 3
             WHEN r.reached_at IS NOT NULL OR c.answered = 1
                  OR rf.registration_id IS NOT NULL THEN 2
             WHEN c.registration_id IS NOT NULL OR sf.registration_id IS NOT NULL THEN 1
             ELSE 0 END AS stage,
        CASE WHEN r.status = 'attended' AND EXISTS (
            SELECT 1 FROM registrations r2 JOIN labs l2 ON l2.id = r2.lab_id
            WHERE r2.prospect_id = r.prospect_id AND r2.status = 'attended'
              AND l2.starts_at > l.starts_at) THEN 1 ELSE 0 END AS returned,
        CASE WHEN r.status = 'attended' AND p.active_user_at IS NOT NULL THEN 1 ELSE 0 END
            AS active,
        COALESCE(c.calls, 0) AS calls, COALESCE(sf.messages, 0) AS messages,
        CASE WHEN r.status = 'no_show' THEN 1 ELSE 0 END AS no_show,
        CASE WHEN o.prospect_id IS NOT NULL THEN 1 ELSE 0 END AS opted_out,
        CASE WHEN c.first_call IS NOT NULL AND sf.first_message IS NOT NULL THEN
                CASE WHEN c.first_call < sf.first_message THEN c.first_call
                     ELSE sf.first_message END
             ELSE COALESCE(c.first_call, sf.first_message) END AS first_contact,
        s.confirmed_at
    FROM registrations r
    JOIN prospects p ON p.id = r.prospect_id
    JOIN labs l ON l.id = r.lab_id
    LEFT JOIN status_facts s ON s.registration_id = r.id
    LEFT JOIN call_facts c ON c.registration_id = r.id
    LEFT JOIN sent_facts sf ON sf.registration_id = r.id
    LEFT JOIN reply_facts rf ON rf.registration_id = r.id
    LEFT JOIN opt_out_facts o ON o.prospect_id = r.prospect_id),
ranked AS (
    SELECT key, {days} AS delay,
        ROW_NUMBER() OVER (PARTITION BY key ORDER BY {days}) AS rnk,
        COUNT(*) OVER (PARTITION BY key) AS size
    FROM per_registration WHERE confirmed_at >= first_contact),
medians AS (
    SELECT key, AVG(delay) AS median_days FROM ranked
    WHERE rnk = (size + 1) / 2 OR rnk = (size + 2) / 2 GROUP BY key)
SELECT g.*, m.median_days FROM (
    SELECT key, COUNT(*) AS invited,
        SUM(CASE WHEN stage >= 1 THEN 1 ELSE 0 END) AS contacted,
        SUM(CASE WHEN stage >= 2 THEN 1 ELSE 0 END) AS reached,
        SUM(CASE WHEN stage >= 3 THEN 1 ELSE 0 END) AS interested,
        SUM(CASE WHEN stage >= 4 THEN 1 ELSE 0 END) AS confirmed,
        SUM(CASE WHEN stage >= 5 THEN 1 ELSE 0 END) AS present,
        SUM(returned) AS returned, SUM(active) AS active, SUM(calls) AS calls,
        SUM(messages) AS messages, SUM(no_show) AS no_shows, SUM(opted_out) AS opted_out
    FROM per_registration GROUP BY key) g
LEFT JOIN medians m ON m.key = g.key
ORDER BY g.key
"""
DAYS = {
    "sqlite": "(julianday(confirmed_at) - julianday(first_contact))",
    "postgresql": "(EXTRACT(EPOCH FROM (confirmed_at - first_contact)) / 86400.0)",
}


def _series(count: int) -> str:
    return f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count})"


def populate() -> None:
    """Set-based inserts (a recursive CTE works on SQLite and PostgreSQL alike)."""
    now = utcnow()
    sources = [Source(name=f"Source {i}") for i in range(5)]
    past = Lab(title="Lab 1", starts_at=now - timedelta(days=40), ends_at=now - timedelta(days=40))
    past.ends_at = past.starts_at + timedelta(hours=4)
    upcoming = Lab(title="Lab 2", starts_at=now + timedelta(days=20), ends_at=now)
    upcoming.ends_at = upcoming.starts_at + timedelta(hours=4)
    db.session.add_all([*sources, past, upcoming])
    db.session.commit()
    callers = [create_user(f"c{i}@bench.fr", "x" * 12, "caller").id for i in range(5)]
    step_id = sequences.sequence_for("invitation", None).steps[0].id
    db.session.commit()
    postgres = db.session.get_bind().dialect.name == "postgresql"
    stamp = "CAST(:at AS TIMESTAMPTZ)" if postgres else ":at"
    at = (now - timedelta(days=30)).replace(tzinfo=None).isoformat(sep=" ")
    at += "+00" if postgres else ""
    true, false = ("TRUE", "FALSE") if postgres else ("1", "0")
    first = sources[0].id
    run = lambda sql: db.session.execute(sa.text(sql), {"at": at})  # noqa: E731
    run(f"""{_series(PROSPECTS)}
        INSERT INTO prospects (id, first_name, last_name, phone, email, organisation, profile,
            notes, source_id, qualification, disqualification_reason, allow_sms, allow_email,
            allow_phone, search_text, version, active_user_at, created_at, updated_at)
        SELECT i, 'Prénom', 'Nom ' || i, '+336' || CAST(10000000 + i AS TEXT),
            'p' || i || '@bench.fr', 'Structure ' || (i % 500), '', '', {first} + (i % 5),
            'yes', '', {true}, {true}, {true}, 'nom ' || i, 1,
            CASE WHEN i % 97 = 0 THEN {stamp} END, {stamp}, {stamp} FROM n""")
    run(f"""{_series(PROSPECTS)}
        INSERT INTO registrations (id, prospect_id, lab_id, status, call_bucket, call_rank,
            next_call_at, reached_at, version, offers_made, created_at, updated_at)
        SELECT i, i, {past.id},
            CASE WHEN i % 9 = 0 THEN 'attended' WHEN i % 13 = 0 THEN 'no_show'
                 WHEN i % 5 = 0 THEN 'declined' ELSE 'contacted' END,
            NULL, 0, NULL, CASE WHEN i % 4 = 0 THEN {stamp} END, 1, 0, {stamp}, {stamp}
        FROM n""")
    run(f"""{_series(PROSPECTS // 10)}
        INSERT INTO registrations (id, prospect_id, lab_id, status, call_bucket, call_rank,
            next_call_at, version, offers_made, created_at, updated_at)
        SELECT {PROSPECTS} + i, i * 10, {upcoming.id},
            CASE WHEN i % 3 = 0 THEN 'attended' ELSE 'interested' END,
            NULL, 0, NULL, 1, 0, {stamp}, {stamp} FROM n""")
    registrations = PROSPECTS + PROSPECTS // 10
    run(f"""{_series(EVENTS)}
        INSERT INTO events (created_at, kind, prospect_id, lab_id, registration_id, from_status,
            to_status, reason, data)
        SELECT {stamp}, 'registration.status', 1 + (i % {PROSPECTS}), {past.id},
            1 + (i % {registrations}), NULL,
            CASE i % 6 {" ".join(f"WHEN {k} THEN '{s}'" for k, s in enumerate(STATUSES))} END,
            '', '{{}}' FROM n""")
    outcomes = ("no_answer", "voicemail", "interested", "confirmed", "declined")
    run(f"""{_series(2 * PROSPECTS)}
        INSERT INTO calls (prospect_id, lab_id, registration_id, caller_id, outcome, notes,
            created_at)
        SELECT 1 + (i % {PROSPECTS}), {past.id}, 1 + (i % {PROSPECTS}),
            {callers[0]} + (i % 5),
            CASE i % 5 {" ".join(f"WHEN {k} THEN '{o}'" for k, o in enumerate(outcomes))} END,
            '', {stamp} FROM n""")
    run(f"""{_series(PROSPECTS)}
        INSERT INTO messages (id, channel, backend, sender, to_address, subject, body, status,
            error, prospect_id, created_at, sent_at)
        SELECT i, 'sms', 'outbox', 'Open Lab', '+33600000000', '', 'Bonjour', 'sent', '', i,
            {stamp}, {stamp} FROM n""")
    run(f"""{_series(PROSPECTS)}
        INSERT INTO followups (registration_id, step_id, due_at, status, reason, message_id,
            attempts, sent_at, created_at, updated_at)
        SELECT i, {step_id}, {stamp}, 'sent', '', i, 0, {stamp}, {stamp}, {stamp} FROM n""")
    run(f"""{_series(5_000)}
        INSERT INTO inbound_messages (message_sid, from_number, to_number, body, params,
            received_at, prospect_id, registration_id, outcome, note)
        SELECT 'SM' || i, '+33600000000', '', 'oui', '{{}}', {stamp}, i * 7, i * 7, 'applied',
            '' FROM n""")
    run(f"""{_series(3_000)}
        INSERT INTO consents (prospect_id, channel, granted, from_person, method, basis,
            recorded_at)
        SELECT i * 11, 'sms', {false}, {true}, 'sms_keyword', '', {stamp} FROM n""")
    if postgres:
        for table in ("prospects", "registrations", "messages"):
            run(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        db.session.commit()
        db.session.execute(sa.text("ANALYZE"))
    db.session.commit()


def timed(work) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = work()
    return (time.perf_counter() - start) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9", help="emptied")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the data (checks)")
    args = parser.parse_args()
    global PROSPECTS, EVENTS
    PROSPECTS, EVENTS = int(PROSPECTS * args.scale), int(EVENTS * args.scale)
    engine = "PostgreSQL" if args.database_url and "postgres" in args.database_url else "SQLite"
    print(f"Funnel benchmark on {engine}: {PROSPECTS:,} prospects, {EVENTS:,} events")
    with database(args.database_url, BENCH_DATABASE) as url:
        app: Flask = create_app(testing_config(url, args.redis_url, Path(tempfile.mkdtemp())))
        with app.app_context():
            db.create_all()
            start = time.perf_counter()
            populate()
            print(f"  data built in {time.perf_counter() - start:.1f} s")
            hand = sa.text(HAND_WRITTEN.format(days=DAYS[db.engine.dialect.name]))
            service_times, hand_times = [], []
            for _ in range(ROUNDS):
                elapsed, result = timed(lambda: funnel.compute(Scope("source")))
                service_times.append(elapsed)
                db.session.rollback()
                elapsed, rows = timed(lambda: db.session.execute(hand).mappings().all())
                hand_times.append(elapsed)
                db.session.rollback()
            ours = {row.key: [row.counts[s] for s in funnel.STEPS] for row in result.rows}  # type: ignore[attr-defined]
            theirs = {r["key"]: [int(r[s]) for s in funnel.STEPS] for r in rows}  # type: ignore[union-attr]
            same = ours == theirs
            service, reference = statistics.median(service_times), statistics.median(hand_times)
            print(f"  funnel per source (service):     median {service:8.1f} ms")
            print(f"  same figures, hand-written SQL:  median {reference:8.1f} ms")
            print(f"  ratio service / hand-written:    {service / reference:.2f} (goal ≤ 2)")
            print(f"  same counts: {'yes' if same else 'NO'}")
            if not same:
                raise SystemExit(1)
        page_timings(app)


PAGE_ROUNDS = 15


def page_timings(app: Flask) -> None:
    """The dashboard page as a manager opens it: from the cache (what the `rq cron` refresh
    keeps warm), the first load of a scope nobody asked for, and with a lab's forecast."""
    client = app.test_client()
    with app.app_context():
        create_user("manager@bench.fr", "x" * 12, "manager")
        db.session.commit()
        get_redis().flushdb()
        lab_id = db.session.scalar(sa.select(Lab.id).where(Lab.title == "Lab 2"))
    token = csrf_token(client)
    client.post(
        "/connexion", data={"email": "manager@bench.fr", "password": "x" * 12, "csrf_token": token}
    )

    def get(url: str) -> float:
        start = time.perf_counter()
        response = client.get(url)
        assert response.status_code == 200, response.status_code
        return (time.perf_counter() - start) * 1000

    cold = get("/tableau-de-bord/")
    warm = statistics.median(get("/tableau-de-bord/") for _ in range(PAGE_ROUNDS))
    bare = statistics.median(get("/healthz") for _ in range(PAGE_ROUNDS))
    get(f"/tableau-de-bord/?lab={lab_id}")  # the lab's funnel into the cache
    with_lab = statistics.median(get(f"/tableau-de-bord/?lab={lab_id}") for _ in range(PAGE_ROUNDS))
    print(f"  page, reference /healthz:        median {bare:8.1f} ms")
    print(f"  page, figures from the cache:    median {warm:8.1f} ms (goal < 300 ms)")
    print(f"  page, one lab with its forecast: median {with_lab:8.1f} ms")
    print(f"  page, first load of a new scope: {cold:8.1f} ms (then refreshed in the background)")


if __name__ == "__main__":
    main()
