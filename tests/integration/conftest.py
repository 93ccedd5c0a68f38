"""Shared fixtures for the integration tests."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from rq import Queue, SimpleWorker
from rq.registry import FailedJobRegistry

import workers.jobs
from crm.extensions import db
from crm.models import Lab, Source
from crm.redis_conn import get_redis
from crm.services.accounts import create_user
from crm.timeutil import local_zone, utcnow
from workers.queues import MESSAGES


def lab_afternoon(days: int) -> datetime:
    """14:00 Paris time in `days` days: labs happen in the daytime, so tests that schedule
    the morning-of-the-lab reminder do not depend on the hour they run at."""
    day = utcnow().astimezone(local_zone()).date() + timedelta(days=days)
    return datetime.combine(day, time(14, 0), tzinfo=local_zone()).astimezone(UTC)


@contextmanager
def saved_meanwhile(model: Any, row_id: int) -> Iterator[None]:
    """Someone else saves this row (versioned: Prospect, Registration) in the instant before
    the app writes it: the app's UPDATE then finds another version (StaleDataError), as when
    a caller and a manager save the same person at once."""
    bumped: list[bool] = []

    def bump(session: Any, *_: Any) -> None:
        if not bumped and any(isinstance(o, model) and o.id == row_id for o in session.dirty):
            bumped.append(True)
            session.connection().execute(
                sa.update(model).where(model.id == row_id).values(version=model.version + 1)
            )

    sa.event.listen(db.session, "before_flush", bump)
    try:
        yield
    finally:
        sa.event.remove(db.session, "before_flush", bump)
    assert bumped, "the app never wrote the row: the test proves nothing"


@pytest.fixture
def world(app_ctx):
    """A recruiting lab, a source, two callers and a manager."""
    source = Source(name="Annuaire")
    starts = lab_afternoon(days=20)
    lab = Lab(
        title="Lab",
        starts_at=starts,
        ends_at=starts + timedelta(hours=4),
        status="recruiting",
    )
    db.session.add_all([source, lab])
    db.session.commit()
    alice = create_user("alice@test.fr", "x" * 12, "caller")
    bob = create_user("bob@test.fr", "x" * 12, "caller")
    manager = create_user("manon@test.fr", "x" * 12, "manager")
    return {"source": source, "lab": lab, "alice": alice, "bob": bob, "manager": manager}


@pytest.fixture
def open_window(app, monkeypatch):
    """Sending allowed at any time, whatever day the tests run (in this process)."""
    monkeypatch.setitem(app.config, "SEND_DAYS", "1-7")
    monkeypatch.setitem(app.config, "SEND_HOURS", "00:00-23:59:59")
    monkeypatch.setattr("crm.services.window.is_holiday", lambda day: False)


@pytest.fixture
def fast_pace(app, monkeypatch):
    monkeypatch.setitem(app.config, "SMS_RATE_PER_SECOND", 1000.0)


def drain(app, monkeypatch, queue_name: str = MESSAGES) -> None:
    """Run every job of a queue in a real RQ SimpleWorker, in this process, with the
    scheduler (burst mode: scheduled jobs due now are enqueued first). The jobs use the test
    app (and its settings: fake Twilio, SMTP, send window)."""
    monkeypatch.setattr(workers.jobs, "worker_app", lambda: app)
    db.session.commit()
    redis = get_redis()
    queue = Queue(queue_name, connection=redis)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        SimpleWorker([queue], connection=redis).work(
            burst=True, with_scheduler=True, logging_level="WARNING"
        )
    finally:
        for sig, handler in handlers.items():  # work() installs its own
            signal.signal(sig, handler)
    failed = FailedJobRegistry(queue=queue)
    assert failed.count == 0, [queue.fetch_job(i).exc_info for i in failed.get_job_ids()]
    db.session.expire_all()
