"""What /healthz reports: database, Redis, live workers, queue lengths, dispatcher."""

from __future__ import annotations

from typing import Any

import redis
import sqlalchemy as sa
from rq import Queue, Worker

from crm.extensions import db
from crm.redis_conn import get_redis
from crm.services import dispatcher
from workers.queues import QUEUE_NAMES


def check() -> tuple[bool, dict[str, Any]]:
    """(healthy, report): healthy when both the database and Redis answer."""
    report: dict[str, Any] = {"database": "ok", "redis": "ok"}
    try:
        db.session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        db.session.rollback()
        report["database"] = f"error: {type(exc).__name__}"
    try:
        conn = get_redis()
        conn.ping()
        report["workers"] = Worker.count(connection=conn)
        report["queues"] = {name: Queue(name, connection=conn).count for name in QUEUE_NAMES}
        last = dispatcher.last_run()
        report["dispatcher_last_run"] = last.isoformat() if last else None
    except (redis.RedisError, OSError) as exc:
        report["redis"] = f"error: {type(exc).__name__}"
        report.update(workers=None, queues=None, dispatcher_last_run=None)
    healthy = report["database"] == "ok" and report["redis"] == "ok"
    report["status"] = "ok" if healthy else "error"
    return healthy, report
