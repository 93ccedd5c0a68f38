"""The worker classes of workers/worker.py, run as real `rq worker` processes on real Redis.

Each job must find the app already built (workers.jobs.worker_app's cache filled before the
job started), and two jobs in a row must both reach the database: with the forking class the
second child must not reuse a connection of the parent's pool.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm.extensions import db
from workers.jobs import worker_app
from workers.queues import DEFAULT, DISPATCH, QUEUE_NAMES, get_queue
from workers.worker import forget_inherited_connections

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
CLASSES = ["workers.worker.AppSimpleWorker", "workers.worker.AppWorker"]
RQ_DEFAULT = "rq.worker.Worker"  # the problem: each forked child builds the app again


def probe() -> dict[str, Any]:
    """A job: was the app built before this job started, and can the job use the database?"""
    prebuilt = worker_app.cache_info().currsize == 1
    app = worker_app()
    with app.app_context():
        tables = db.session.scalar(sa.text("SELECT count(*) FROM users")) is not None
    return {"prebuilt": prebuilt, "pid": os.getpid(), "app": id(app), "db": tables}


def run_worker(worker_class: str, redis_url: str, database_url: str, tmp_path: Path) -> str:
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY="worker-class-test",
        CRM_INSTANCE_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [
            str(BIN / "rq"),
            "worker",
            "--burst",
            f"--worker-class={worker_class}",
            "--url",
            redis_url,
            *QUEUE_NAMES,
        ],
        env=env,
        cwd=ROOT,  # the worker imports this module's probe
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.mark.parametrize("worker_class", [*CLASSES, RQ_DEFAULT])
def test_jobs_run_in_the_app_built_before_them(
    app: Flask, database_url: str, redis_url: str, tmp_path: Path, worker_class: str
) -> None:
    with app.app_context():
        jobs = [get_queue(DEFAULT).enqueue(probe) for _ in range(2)]
        dispatches = [get_queue(DISPATCH).enqueue("workers.jobs.dispatch_due") for _ in range(2)]
    log = run_worker(worker_class, redis_url, database_url, tmp_path)
    with app.app_context():
        for job in [*jobs, *dispatches]:
            job.refresh()
            assert job.get_status() == "finished", log
        first, second = (job.return_value() for job in jobs)
        assert [d.return_value()["enqueued"] for d in dispatches] == [0, 0]
    assert first["db"] and second["db"]
    if worker_class == RQ_DEFAULT:
        assert not first["prebuilt"] and not second["prebuilt"]
        return
    assert first["prebuilt"] and second["prebuilt"]
    if worker_class.endswith("AppWorker"):
        # One child per job, each a copy of the parent holding the same app object.
        assert first["pid"] != second["pid"]
        assert first["app"] == second["app"]
    else:
        assert first["pid"] == second["pid"]
        assert first["app"] == second["app"]


def test_a_forked_child_leaves_the_parents_connections_alone(app: Flask) -> None:
    """The parent has an open connection in its pool; the forked child drops it unclosed,
    works on its own connection and closes it; the parent's connection still answers."""
    with app.app_context():
        raw = db.engine.raw_connection()
        driver = raw.driver_connection
        raw.close()  # back to the pool, open
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            forget_inherited_connections(app)
            with app.app_context():
                code = 0 if db.session.scalar(sa.text("SELECT 2")) == 2 else 1
                db.session.remove()
                db.engine.dispose(close=True)  # closes the child's own connections only
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's own connection (still in its pool; which one the pool hands out next
    # depends on what earlier tests left there) still answers: the child did not cut it.
    try:
        assert driver.execute("SELECT 3").fetchone()[0] == 3
    finally:
        driver.rollback()  # leave it idle, as the pool expects
