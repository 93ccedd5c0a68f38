"""The periodic dispatcher (every 30 s under `rq cron`): each run leaves a heartbeat that
/healthz reports, claims the due follow-up rows and enqueues one send job per row.

Claiming is a conditional UPDATE `scheduled` → `queued` (on PostgreSQL the candidate rows
are selected FOR UPDATE SKIP LOCKED), so two dispatchers at once never claim the same row.
Jobs have the deterministic id `followup-<id>` and are enqueued with `unique=True`. The
database is the record: a row left in `queued` for STUCK_AFTER (Redis lost its job) is
enqueued again by a later pass; the send job only acts on a `queued` row, so a job run twice
sends once. A row left in `sending` for STUCK_AFTER goes to review (`unknown`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job

from crm.extensions import db
from crm.models import FollowUp, Lab, Registration
from crm.redis_conn import get_redis
from crm.services import lab_day, offer_sending, receipts, sending, waitlist
from crm.timeutil import utcnow

HEARTBEAT_KEY = "crm:dispatcher:last_run"
BATCH_SIZE = 500
MAX_BATCHES = 20  # at most 10,000 rows a pass; the next pass takes the rest
STUCK_AFTER = timedelta(minutes=10)  # the default of STUCK_AFTER_SECONDS
LIVE_JOB_STATUSES = ("queued", "started", "scheduled", "deferred")
SEND_JOB = "workers.jobs.send_followup"


def job_id(followup_id: int) -> str:
    return f"followup-{followup_id}"


def run() -> dict[str, int | str]:
    now = utcnow()
    get_redis().set(HEARTBEAT_KEY, now.isoformat())
    enqueued = 0
    for _ in range(MAX_BATCHES):
        ids = claim_due(now, BATCH_SIZE)
        enqueued += sum(enqueue(i) for i in ids)
        if len(ids) < BATCH_SIZE:
            break
    requeued = requeue_stuck(now)
    review = abandon_sending(now)
    offers = waitlist.tick(now)
    early = receipts.apply_early()
    invitations = lab_day.queue_missed_invitations(now)
    return {
        "ran_at": now.isoformat(),
        "enqueued": enqueued,
        "requeued": requeued,
        "to_review": review,
        "early_receipts": early,
        "next_lab_invitations": invitations,
        **offers,
        "offers_enqueued": offer_sending.enqueue_due(now),
    }


def stuck_after() -> timedelta:
    return timedelta(seconds=int(current_app.config.get("STUCK_AFTER_SECONDS") or 600))


def claim_due(now: datetime, limit: int) -> list[int]:
    """Move up to `limit` due rows from scheduled to queued; returns the claimed ids.
    Rows of a lab whose sending a manager paused stay scheduled until it resumes."""
    candidates = sa.select(FollowUp.id).where(
        FollowUp.status == "scheduled", FollowUp.due_at <= now
    )
    paused = list(db.session.scalars(sa.select(Lab.id).where(Lab.sending_paused)))
    if paused:  # usually none: then the claim is a plain index range read
        candidates = candidates.where(
            ~sa.exists().where(
                Registration.id == FollowUp.registration_id, Registration.lab_id.in_(paused)
            )
        )
    candidates = candidates.order_by(FollowUp.due_at).limit(limit).with_for_update(skip_locked=True)
    statement = (
        sa.update(FollowUp)
        .where(FollowUp.id.in_(candidates.scalar_subquery()), FollowUp.status == "scheduled")
        .values(status="queued", queued_at=now, updated_at=now)
        .returning(FollowUp.id)
        .execution_options(synchronize_session=False)
    )
    ids = list(db.session.scalars(statement))
    db.session.commit()
    return ids


def enqueue(followup_id: int) -> bool:
    """One send job for the row; False when a job with its id already exists."""
    from workers.queues import MESSAGES, get_queue

    queue = get_queue(MESSAGES)
    for _ in range(2):
        try:
            queue.enqueue(
                SEND_JOB, followup_id, job_id=job_id(followup_id), unique=True, result_ttl=600
            )
        except DuplicateJobError:
            # A finished job keeps its id for result_ttl: a row due again (a retry) must not
            # wait for it to expire. A live job is left alone: it will do the work.
            if _job_alive(followup_id):
                return False
            continue
        return True
    return False


def requeue_stuck(now: datetime) -> int:
    """Enqueue again the rows queued long ago whose job is no longer alive in Redis."""
    cutoff = now - stuck_after()
    ids = list(
        db.session.scalars(
            sa.select(FollowUp.id)
            .where(FollowUp.status == "queued", FollowUp.queued_at < cutoff)
            .limit(BATCH_SIZE)
        )
    )
    requeued = 0
    alive = _jobs_alive(ids, cutoff)
    for followup_id in ids:
        if alive[followup_id]:
            continue
        db.session.execute(
            sa.update(FollowUp)
            .where(FollowUp.id == followup_id, FollowUp.status == "queued")
            .values(queued_at=now)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        requeued += enqueue(followup_id)
    return requeued


def abandon_sending(now: datetime) -> int:
    """Rows left in `sending` (a worker died, or failed before recording the answer) go to
    review as `unknown`: they may have been sent, so they are never sent again."""
    stuck = list(
        db.session.scalars(
            sa.select(FollowUp)
            .where(FollowUp.status == "sending", FollowUp.updated_at < now - stuck_after())
            .limit(BATCH_SIZE)
        )
    )
    moved = 0
    for row in stuck:
        result = db.session.execute(
            sa.update(FollowUp)
            .where(FollowUp.id == row.id, FollowUp.status == "sending")
            .values(status="unknown", reason=sending.INTERRUPTED_REASON, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            sending.record_interrupted(row)
            moved += 1
        db.session.commit()
    return moved


def _jobs_alive(followup_ids: list[int], started_before: datetime) -> dict[int, bool]:
    """`_job_alive` for many rows queued long ago, in one Redis round trip. A job that started
    before `started_before` on a row still `queued` lost its worker (killed): a live send job
    moves its row within a second. Running it again is safe: only one run moves the row."""
    jobs = Job.fetch_many([job_id(i) for i in followup_ids], connection=get_redis())
    alive = {}
    for followup_id, job in zip(followup_ids, jobs, strict=True):
        status = job.get_status(refresh=False) if job is not None else None
        live = status in LIVE_JOB_STATUSES
        if status == "started" and job is not None:
            live = job.started_at is None or job.started_at >= started_before
        if job is not None and not live:
            job.delete()  # a dead job's key would block enqueueing the row again
        alive[followup_id] = live
    return alive


def _job_alive(followup_id: int) -> bool:
    """True when the job is waiting or running; a dead job's key is deleted so it can return."""
    redis = get_redis()
    try:
        job = Job.fetch(job_id(followup_id), connection=redis)
    except NoSuchJobError:
        return False
    if job.get_status(refresh=True) in LIVE_JOB_STATUSES:
        return True
    job.delete()
    return False


def last_run() -> datetime | None:
    value = get_redis().get(HEARTBEAT_KEY)
    return datetime.fromisoformat(value.decode()) if value else None
