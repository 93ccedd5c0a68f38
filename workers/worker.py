"""RQ worker classes that build the Flask app once per worker process, not once per job.

RQ's default `Worker` forks a child ("work horse") per job. `workers.jobs.worker_app()` is
cached per process, so when the first call happens in the child the cache dies with it and
every job pays for `create_app()` again (about 0.9 s). Both classes here call `worker_app()`
in the worker process before the first job:

- `AppSimpleWorker` (production choice, see docs/benchmarks.md): runs jobs in the worker
  process itself (RQ's SimpleWorker), so the app, the database pool, the Redis connection and
  the Twilio client's keep-alive connection are reused by every job.
- `AppWorker`: forks per job like RQ's Worker (a crash or leak in a job cannot hurt the
  worker), the child inheriting the ready app. A forked child must not use the parent's
  pooled connections: it drops them without closing them (closing would cut the parent's).

    rq worker --worker-class=workers.worker.AppSimpleWorker --url "$REDIS_URL" dispatch ...
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from rq.job import Job
from rq.queue import Queue
from rq.worker import SimpleWorker, Worker
from sqlalchemy.orm import configure_mappers

from workers.jobs import worker_app


def prepare_app() -> Flask:
    """Build (once) the app the jobs run in, before any job is taken, and do the other
    first-use work too: the jobs' modules (the `twilio` client alone takes a good part of a
    second to import) and SQLAlchemy's mapper configuration. A forked child would otherwise
    redo all of it for every job, since what it loads dies with it."""
    import crm.messaging.twilio_backend
    import crm.services.dispatcher
    import crm.services.imports
    import crm.services.sending  # noqa: F401

    app = worker_app()
    configure_mappers()
    return app


def forget_inherited_connections(app: Flask) -> None:
    """In a forked child: drop the pooled connections copied from the parent, unclosed.

    SQLAlchemy's pool is not fork-safe: two processes on one socket mix their protocol
    streams. `dispose(close=False)` gives the child a new pool and leaves the parent's
    sockets alone. redis-py notices the new pid by itself; the app's client is dropped anyway
    so that nothing from the parent is reused. The Twilio client (and its keep-alive
    connection) is rebuilt in the child for the same reason.
    """
    from crm.extensions import db
    from crm.messaging import twilio_backend

    with app.app_context():
        for engine in db.engines.values():
            engine.dispose(close=False)
    app.extensions.pop("crm_redis", None)
    twilio_backend.get_client.cache_clear()


class _PrebuiltApp:
    """Builds the app in `work()`, before the loop that takes jobs."""

    def work(self, *args: Any, **kwargs: Any) -> bool:
        prepare_app()
        return super().work(*args, **kwargs)  # type: ignore[misc]


class AppSimpleWorker(_PrebuiltApp, SimpleWorker):
    """No fork: every job runs in this process, in the app built once at start."""


class AppWorker(_PrebuiltApp, Worker):
    """A fork per job, the child inheriting the app built once in the parent."""

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        forget_inherited_connections(worker_app())
        super().main_work_horse(job, queue)
