"""The dispatcher claims due follow-ups once, and real `rq worker` processes send them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.models import CallTask, FollowUp, Message
from crm.services import dispatcher
from crm.services.window import is_holiday
from crm.timeutil import to_local, utcnow
from tests.factories import person
from workers.queues import MESSAGES, get_queue

if TYPE_CHECKING:
    from tests.fakes import FakeTwilioServer

pytest_plugins = ["tests.fakes"]
BIN = Path(sys.executable).parent


def make_due(world, count: int, **fields) -> list[int]:
    for _ in range(count):
        person(world, allow_sms=True, allow_email=True, **fields)
    db.session.execute(sa.update(FollowUp).values(due_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    return list(db.session.scalars(sa.select(FollowUp.id).order_by(FollowUp.id)))


def statuses() -> dict[str, int]:
    query = sa.select(FollowUp.status, sa.func.count()).group_by(FollowUp.status)
    return {status: count for status, count in db.session.execute(query)}


def test_due_rows_are_claimed_and_enqueued_once(world):
    ids = make_due(world, 3)
    first = dispatcher.run()
    assert first["enqueued"] == len(ids) == 12
    assert dispatcher.run()["enqueued"] == 0
    assert statuses() == {"queued": 12}
    queue = get_queue(MESSAGES)
    assert sorted(queue.job_ids) == sorted(dispatcher.job_id(i) for i in ids)
    assert dispatcher.last_run() is not None


def test_future_rows_are_not_claimed(world):
    person(world)
    assert dispatcher.run()["enqueued"] == 0
    assert statuses() == {"scheduled": 4}


def test_two_dispatchers_at_once_claim_each_row_once(app, world):
    ids = make_due(world, 25)
    results: list[list[int]] = []
    barrier = threading.Barrier(2)

    def dispatch() -> None:
        with app.app_context():
            barrier.wait()
            claimed = dispatcher.claim_due(utcnow(), 40)
            claimed += dispatcher.claim_due(utcnow(), 200)
            for followup_id in claimed:
                dispatcher.enqueue(followup_id)
            results.append(claimed)

    threads = [threading.Thread(target=dispatch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    claimed = results[0] + results[1]
    assert sorted(claimed) == ids  # every row once, none twice
    assert get_queue(MESSAGES).count == len(ids)


def test_enqueue_is_unique_per_row(world):
    (first, *_) = make_due(world, 1)
    assert dispatcher.enqueue(first) is True
    assert dispatcher.enqueue(first) is False
    assert get_queue(MESSAGES).count == 1


def test_rows_stuck_in_queued_are_enqueued_again(world):
    ids = make_due(world, 1)
    dispatcher.run()
    get_queue(MESSAGES).empty()  # Redis lost the jobs
    db.session.execute(
        sa.update(FollowUp).values(queued_at=utcnow() - dispatcher.STUCK_AFTER - timedelta(1))
    )
    db.session.commit()
    result = dispatcher.run()
    assert result["requeued"] == len(ids)
    assert get_queue(MESSAGES).count == len(ids)
    assert dispatcher.run()["requeued"] == 0  # queued_at was refreshed


def test_a_stuck_row_whose_job_is_waiting_is_left_alone(world):
    make_due(world, 1)
    dispatcher.run()
    db.session.execute(
        sa.update(FollowUp).values(queued_at=utcnow() - dispatcher.STUCK_AFTER - timedelta(1))
    )
    db.session.commit()
    assert dispatcher.run()["requeued"] == 0
    assert get_queue(MESSAGES).count == 4


def test_a_row_whose_job_started_long_ago_lost_its_worker(world):
    """A worker killed during a job leaves it `started` in Redis; the row is still `queued`
    (the job died before moving it): after the stuck delay it is enqueued again."""
    from rq.job import Job

    (first, *_) = make_due(world, 1)
    dispatcher.run()
    long_ago = utcnow() - dispatcher.STUCK_AFTER - timedelta(minutes=1)
    job = Job.fetch(dispatcher.job_id(first), connection=get_queue(MESSAGES).connection)
    get_queue(MESSAGES).remove(job)  # taken by a worker...
    job.set_status("started")
    job.started_at = long_ago  # ...which then died
    job.save()
    db.session.execute(sa.update(FollowUp).values(queued_at=long_ago))
    db.session.commit()
    assert dispatcher.run()["requeued"] == 1  # the person's 3 other rows wait in the queue
    assert get_queue(MESSAGES).count == 4


# --- real workers ----------------------------------------------------------------------------


def _run_worker(redis_url: str, database_url: str, tmp_path: Path, **env: str) -> None:
    environment = dict(
        os.environ,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY="worker-test",
        CRM_INSTANCE_DIR=str(tmp_path),
        CRM_SEND_DAYS="1-7",
        CRM_SEND_HOURS="00:00-23:59:59",
        **env,
    )
    result = subprocess.run(
        [
            str(BIN / "rq"),
            "worker",
            "--burst",
            "-w",
            "rq.worker.SimpleWorker",
            "--url",
            redis_url,
            MESSAGES,
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture
def sendable_day(app):
    with app.app_context():
        if is_holiday(to_local(utcnow()).date()):
            pytest.skip("jour férié : la fenêtre d'envoi est fermée")


def test_real_worker_sends_through_the_outbox(
    app, world, database_url, redis_url, tmp_path, sendable_day
):
    make_due(world, 3, email=None)
    db.session.execute(sa.text("UPDATE prospects SET email = 'p' || id || '@example.fr'"))
    db.session.commit()
    assert dispatcher.run()["enqueued"] == 12
    db.session.remove()
    _run_worker(redis_url, database_url, tmp_path, CRM_SMS_BACKEND="outbox")
    with app.app_context():
        assert statuses() == {"sent": 12}
        assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 9
        assert db.session.scalar(sa.select(sa.func.count(CallTask.id))) == 3
        # Run the same jobs again: nothing new is sent.
        for followup_id in db.session.scalars(sa.select(FollowUp.id)):
            get_queue(MESSAGES).enqueue("workers.jobs.send_followup", followup_id)
    _run_worker(redis_url, database_url, tmp_path, CRM_SMS_BACKEND="outbox")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 9


def test_real_worker_sends_sms_through_the_fake_twilio_server(
    app, world, database_url, redis_url, tmp_path, sendable_day, fake_twilio: FakeTwilioServer
):
    make_due(world, 2)
    sms_steps = [r for r in db.session.scalars(sa.select(FollowUp)) if r.step.channel == "sms"]
    interrupted = sms_steps[0]
    interrupted.status = "sending"  # a worker died during its provider call
    others = [r.id for r in db.session.scalars(sa.select(FollowUp)) if r.step.channel != "sms"]
    db.session.execute(
        sa.update(FollowUp).where(FollowUp.id.in_(others)).values(due_at=utcnow() + timedelta(1))
    )
    db.session.commit()
    assert dispatcher.run()["enqueued"] == 3
    get_queue(MESSAGES).enqueue("workers.jobs.send_followup", interrupted.id)
    interrupted_id = interrupted.id
    db.session.remove()
    _run_worker(
        redis_url,
        database_url,
        tmp_path,
        TWILIO_ACCOUNT_SID=fake_twilio.account_sid,
        TWILIO_AUTH_TOKEN=fake_twilio.auth_token,
        TWILIO_SENDER="OpenLab",
        TWILIO_BASE_URL=fake_twilio.url,
    )
    with app.app_context():
        assert statuses() == {"sent": 3, "unknown": 1, "scheduled": 4}
        assert db.session.get(FollowUp, interrupted_id).status == "unknown"
        assert len(fake_twilio.sent) == 3
        assert {m["from"] for m in fake_twilio.sent} == {"OpenLab"}
        providers = db.session.scalars(sa.select(Message.provider_id)).all()
        assert sorted(providers) == sorted(m["sid"] for m in fake_twilio.sent)


def test_rows_left_sending_go_to_review(world):
    make_due(world, 1)
    long_ago = utcnow() - dispatcher.STUCK_AFTER - timedelta(minutes=1)
    db.session.execute(
        sa.update(FollowUp).where(FollowUp.id == 1).values(status="sending", updated_at=long_ago)
    )
    db.session.execute(
        sa.update(FollowUp).where(FollowUp.id == 2).values(status="sending", updated_at=utcnow())
    )
    db.session.commit()
    assert dispatcher.run()["to_review"] == 1
    assert db.session.get(FollowUp, 1).status == "unknown"
    assert db.session.get(FollowUp, 2).status == "sending"
