"""A real `rq worker` process runs the dispatcher job against the test database and Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from crm.services import dispatcher
from workers.queues import DISPATCH, QUEUE_NAMES, get_queue

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
