"""Queue names, in the order a worker serves them, and the connection they use."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rq import Queue
from rq.exceptions import DuplicateJobError
from rq.job import Job

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


def enqueue_at(
    when: datetime, func: str | Callable[..., Any], *args: Any, queue: str = DEFAULT, **kwargs: Any
) -> Job:
    """Schedule a job at an aware datetime, sent to RQ in UTC.

    RQ reads a naive datetime as the server's local time and gets daylight saving wrong:
    refuse it rather than guess.
    """
    if when.tzinfo is None:
        raise ValueError("naive datetime refused: schedule jobs with an aware UTC datetime")
    return get_queue(queue).enqueue_at(when.astimezone(UTC), func, *args, **kwargs)
