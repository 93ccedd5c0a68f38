"""Queue names, in the order a worker serves them, and the connection they use."""

from __future__ import annotations

from typing import Any

from rq import Queue
from rq.exceptions import DuplicateJobError

from crm.redis_conn import get_redis

DISPATCH = "dispatch"
MESSAGES = "messages"
IMPORTS = "imports"
DEFAULT = "default"
QUEUE_NAMES = (DISPATCH, MESSAGES, IMPORTS, DEFAULT)


def get_queue(name: str = DEFAULT) -> Queue:
    """A queue on the current app's Redis (call inside an app context)."""
    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=get_redis())


def enqueue_once(name: str, func: str, *args: Any, job_id: str, **kwargs: Any) -> bool:
    """Enqueue `func` under a deterministic job id with RQ's `unique=True`; False when a job
    with that id exists already (waiting, running or finished: the job itself decides from
    the database whether anything is left to do)."""
    try:
        get_queue(name).enqueue(func, *args, job_id=job_id, unique=True, **kwargs)
    except DuplicateJobError:
        return False
    return True
