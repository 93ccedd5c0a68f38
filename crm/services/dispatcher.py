"""The periodic dispatcher: each run leaves a heartbeat that /healthz reports.

The follow-up engine adds its work here: claim due follow-up rows, enqueue one send job each.
"""

from __future__ import annotations

from datetime import datetime

from crm.redis_conn import get_redis
from crm.timeutil import utcnow

HEARTBEAT_KEY = "crm:dispatcher:last_run"


def run() -> dict[str, int | str]:
    now = utcnow()
    get_redis().set(HEARTBEAT_KEY, now.isoformat())
    return {"ran_at": now.isoformat(), "enqueued": 0}


def last_run() -> datetime | None:
    value = get_redis().get(HEARTBEAT_KEY)
    return datetime.fromisoformat(value.decode()) if value else None
