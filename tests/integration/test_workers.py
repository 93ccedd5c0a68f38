"""A real `rq worker` process runs the dispatcher job against the test database and Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from rq.registry import ScheduledJobRegistry

from crm.services import dispatcher
from workers.queues import DEFAULT, DISPATCH, QUEUE_NAMES, enqueue_at, get_queue

BIN = Path(sys.executable).parent


def test_dispatcher_job_runs_in_a_real_worker(app, database_url, redis_url, tmp_path):
    with app.app_context():
        assert dispatcher.last_run() is None
        job = get_queue(DISPATCH).enqueue("workers.jobs.dispatch_due")
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY="worker-test",
        CRM_INSTANCE_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [str(BIN / "rq"), "worker", "--burst", "--url", redis_url, *QUEUE_NAMES],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    with app.app_context():
        job.refresh()
        assert job.get_status() == "finished", result.stderr
        assert dispatcher.last_run() is not None
        assert job.return_value()["enqueued"] == 0


def test_jobs_are_enqueued_with_aware_utc_datetimes_only(app):
    with app.app_context():
        with pytest.raises(ValueError, match="naive"):
            enqueue_at(datetime(2026, 3, 29, 2, 30), "workers.jobs.dispatch_due")
        # 03:30 in Paris on the night clocks go forward is 01:30 UTC.
        paris = datetime(2026, 3, 29, 3, 30, tzinfo=ZoneInfo("Europe/Paris"))
        job = enqueue_at(paris, "workers.jobs.dispatch_due")
        registry = ScheduledJobRegistry(queue=get_queue(DEFAULT))
        scheduled = registry.get_scheduled_time(job)
        assert scheduled == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
