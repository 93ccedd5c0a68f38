"""The follow-up engine against the cases required by its issue, on the real stack.

Real Redis, real RQ workers (`rq.SimpleWorker(...).work(burst=True, with_scheduler=True)` in
this process, or a real `rq worker` subprocess), the real `twilio` client against the fake
Twilio server and a real SMTP server (aiosmtpd).

Time is never frozen: the send-time rules are checked with explicit `now` values
(`sending.check`, `followups.start_invitation` / `start_reminders`), and rows are made due by
moving their `due_at` into the past.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.messaging.errors import describe_error_code
from crm.models import CallTask, Event, FollowUp, Lab, Message, Sequence, SequenceStep, Source
from crm.services import calls, dispatcher, followups, sending, timeline
from crm.services.accounts import create_user
from crm.services.registrations import register, transition
from crm.services.window import is_holiday, is_open, send_window
from crm.timeutil import to_local, utcnow
from tests.factories import person
from tests.integration.conftest import drain, lab_afternoon
from workers.queues import MESSAGES, get_queue

if TYPE_CHECKING:
    from tests.fakes import FakeSmtpServer, FakeTwilioServer

pytest_plugins = ["tests.fakes"]
BIN = Path(sys.executable).parent
PARIS = ZoneInfo("Europe/Paris")
FAR_LAB_START = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)  # after every `now` used below


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def world(app_ctx):
    """The shared `world` without its two callers (hashing their passwords is slow)."""
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
    return {"source": source, "lab": lab}


def reachable(world, status="to_contact", **fields):
    return person(world, status, **{"allow_sms": True, "allow_email": True, **fields})


def rows(registration, kind: str | None = None) -> list[FollowUp]:
    query = (
        sa.select(FollowUp)
        .join(SequenceStep, SequenceStep.id == FollowUp.step_id)
        .join(Sequence, Sequence.id == SequenceStep.sequence_id)
        .where(FollowUp.registration_id == registration.id)
        .order_by(SequenceStep.position)
    )
    if kind:
        query = query.where(Sequence.kind == kind)
    return list(db.session.scalars(query))


def make_due(row: FollowUp, status: str = "queued") -> FollowUp:
    row.status, row.due_at = status, utcnow() - timedelta(minutes=1)
    db.session.commit()
    return row


def to_number(fake: FakeTwilioServer, number: str) -> int:
    return sum(1 for r in fake.requests if r.form.get("To") == number)


def failures_on_timeline(prospect_id: int) -> list[timeline.TimelineItem]:
    return [i for i in timeline.for_prospect(prospect_id) if i.kind == "message.failed"]


def only_first_sms_due(registration) -> FollowUp:
    """The invitation's first SMS due now (scheduled); the other steps far in the future."""
    first, *others = rows(registration, "invitation")
    for other in others:
        other.due_at = utcnow() + timedelta(days=30)
    return make_due(first, "scheduled")


# --- confirmation stops the invitation and starts the reminders ------------------------------


def test_confirmation_after_dispatch_sends_nothing_and_the_reminders_go_out(
    app,
    world,
    open_window,
    fast_pace,
    monkeypatch,
    sms_via_twilio: FakeTwilioServer,
    email_via_smtp: FakeSmtpServer,
):
    reg = reachable(world, email="confirme@example.fr")
    sms = only_first_sms_due(reg)
    assert dispatcher.run()["enqueued"] == 1  # the job is waiting in Redis...
    caller = create_user("alice@test.fr", "x" * 12, "caller")
    calls.log_outcome(reg, caller, calls.Outcome("confirmed"))  # ...when she confirms
    drain(app, monkeypatch)
    assert sms_via_twilio.requests == []
    assert sms.status == "cancelled"
    assert {r.status for r in rows(reg, "invitation")} == {"cancelled"}
    reminders = rows(reg, "reminders")
    assert [r.status for r in reminders] == ["scheduled"] * 3
    assert all(r.due_at < reg.lab.starts_at for r in reminders)
    make_due(reminders[0], "scheduled")  # the J-7 e-mail
    assert dispatcher.run()["enqueued"] == 1
    drain(app, monkeypatch)
    assert reminders[0].status == "sent"
    [mail] = email_via_smtp.messages
    assert mail.rcpt_tos == ["confirme@example.fr"]
    assert mail.message["Subject"].startswith("Rappel : lab « Lab »")
    assert sms_via_twilio.requests == []


# --- send window and public holidays (explicit `now`, default window 1-5 10:00-20:00) -------


def _fresh_invitation(world, now: datetime) -> list[FollowUp]:
    """A registration whose invitation rows are scheduled as if it was created at `now`."""
    world["lab"].starts_at, world["lab"].ends_at = FAR_LAB_START, FAR_LAB_START + timedelta(1)
    reg = reachable(world)
    db.session.execute(sa.delete(FollowUp).where(FollowUp.registration_id == reg.id))
    followups.start_invitation(reg, now.astimezone(UTC))
    db.session.commit()
    return rows(reg, "invitation")


def _local(row: FollowUp) -> datetime:
    return row.due_at.astimezone(PARIS)


@pytest.mark.parametrize(
    ("registered", "expected"),
    [
        # Registered Thursday 19:59: J+1 is Friday 19:59 (inside), J+3 Sunday → Monday 10:00.
        (
            paris(2026, 3, 12, 19, 59),
            [
                paris(2026, 3, 13, 19, 59),
                paris(2026, 3, 16, 10, 0),
                paris(2026, 3, 17, 19, 59),
                paris(2026, 3, 20, 19, 59),
            ],
        ),
        # Easter 2026: J+3 is Easter Sunday, Monday 6 April is a holiday → Tuesday 10:00.
        # Good Friday is not a public holiday in France (outside Alsace-Moselle).
        (
            paris(2026, 4, 2, 19, 59),
            [
                paris(2026, 4, 3, 19, 59),
                paris(2026, 4, 7, 10, 0),
                paris(2026, 4, 7, 19, 59),
                paris(2026, 4, 10, 19, 59),
            ],
        ),
        # Whit Monday 25 May 2026 → Tuesday 26 May 10:00.
        (
            paris(2026, 5, 21, 12, 0),
            [
                paris(2026, 5, 22, 12, 0),
                paris(2026, 5, 26, 10, 0),
                paris(2026, 5, 26, 12, 0),
                paris(2026, 5, 29, 12, 0),
            ],
        ),
    ],
)
def test_invitation_steps_are_scheduled_inside_the_window(world, registered, expected):
    invitation = _fresh_invitation(world, registered)
    assert [_local(r) for r in invitation] == expected
    assert all(is_open(r.due_at, send_window()) for r in invitation)


WINDOW_CASES = [
    (paris(2026, 3, 13, 19, 59), None),  # Friday 19:59: the window is open till 20:00
    (paris(2026, 3, 13, 19, 59, 59), None),
    (paris(2026, 3, 13, 20, 0), paris(2026, 3, 16, 10, 0)),  # Friday 20:00 → Monday
    (paris(2026, 3, 14, 11, 0), paris(2026, 3, 16, 10, 0)),  # Saturday → Monday 10:00
    (paris(2026, 4, 4, 11, 0), paris(2026, 4, 7, 10, 0)),  # Saturday before Easter Monday
    (paris(2026, 4, 6, 11, 0), paris(2026, 4, 7, 10, 0)),  # Easter Monday itself
    (paris(2026, 5, 23, 11, 0), paris(2026, 5, 26, 10, 0)),  # Saturday before Whit Monday
    (paris(2026, 4, 3, 19, 59), None),  # Good Friday: a working day
]


def test_the_send_job_checks_the_window_at_send_time(world):
    row = _fresh_invitation(world, paris(2026, 3, 1, 12, 0))[0]  # an SMS step
    for now, moved_to in WINDOW_CASES:  # one test: each case needs no new data
        decision = sending.check(row, now.astimezone(UTC))
        if moved_to is None:
            assert decision.action == "send", (now, decision)
        else:
            assert (decision.action, decision.when) == ("reschedule", moved_to), now


def test_a_row_sent_outside_the_window_is_rescheduled_by_the_real_job(world, app, monkeypatch):
    """The job itself (real clock) moves a due row found outside the window, never sends it."""
    monkeypatch.setitem(app.config, "SEND_DAYS", "1-7")
    closed_hour = (to_local(utcnow()).hour + 2) % 24  # a one-hour window, not the current hour
    monkeypatch.setitem(app.config, "SEND_HOURS", f"{closed_hour:02d}:00-{closed_hour:02d}:59")
    reg = reachable(world)
    row = make_due(rows(reg, "invitation")[0])
    assert sending.send(row.id) == "scheduled"
    assert row.queued_at is None and row.due_at > utcnow()
    assert to_local(row.due_at).hour == closed_hour and to_local(row.due_at).minute == 0
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


# --- daylight saving time -------------------------------------------------------------------


def test_invitation_across_the_spring_change_lands_inside_the_window(world):
    # Clocks go forward on Sunday 29 March 2026.
    invitation = _fresh_invitation(world, paris(2026, 3, 26, 15, 0))
    assert all(is_open(r.due_at, send_window()) for r in invitation)
    email = invitation[1]  # J+3 = Sunday → Monday 30 March 10:00 summer time = 08:00 UTC
    assert email.due_at == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    assert _local(email).utcoffset() == timedelta(hours=2)


def test_invitation_across_the_autumn_change_lands_inside_the_window(world):
    # Clocks go back on Sunday 25 October 2026.
    invitation = _fresh_invitation(world, paris(2026, 10, 22, 15, 0))
    assert all(is_open(r.due_at, send_window()) for r in invitation)
    email = invitation[1]  # J+3 = Sunday → Monday 26 October 10:00 winter time = 09:00 UTC
    assert email.due_at == datetime(2026, 10, 26, 9, 0, tzinfo=UTC)


def test_reminders_of_a_lab_just_after_the_spring_change(world):
    lab = world["lab"]
    lab.starts_at = paris(2026, 3, 31, 14, 0).astimezone(UTC)  # Tuesday, summer time
    lab.ends_at = lab.starts_at + timedelta(hours=3)
    reg = reachable(world, "confirmed")
    db.session.execute(sa.delete(FollowUp).where(FollowUp.registration_id == reg.id))
    followups.start_reminders(reg, paris(2026, 3, 20, 12, 0).astimezone(UTC))
    db.session.commit()
    email, two_days, morning = rows(reg, "reminders")
    assert {r.status for r in (email, two_days, morning)} == {"scheduled"}
    # J-2 is Sunday 29 (the change) → Monday 30 at 10:00 summer time.
    assert two_days.due_at == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    # The morning reminder (08:30 local) moves to 10:00 local on the lab day.
    assert morning.due_at == datetime(2026, 3, 31, 8, 0, tzinfo=UTC)
    assert all(is_open(r.due_at, send_window()) for r in (email, two_days, morning))
    assert _local(email).date() == paris(2026, 3, 24).date()


def test_a_day_offset_keeps_the_local_wall_clock_across_the_spring_change(world):
    invitation = _fresh_invitation(world, paris(2026, 3, 26, 19, 30))  # Thursday 19:30
    call = invitation[2]  # J+5: Tuesday 31 March, after the change
    assert _local(call) == paris(2026, 3, 31, 19, 30)


# --- pressure cap ----------------------------------------------------------------------------


def test_pressure_cap_four_messages_in_thirty_days_across_labs(world, open_window, fast_pace):
    """Default cap: 4 automated SMS/e-mails in 30 days, all labs together; calls and
    messages older than 30 days do not count."""
    reg_a = reachable(world, email="cap@example.fr")
    other = Lab(
        title="Autre lab",
        starts_at=reg_a.lab.starts_at,
        ends_at=reg_a.lab.ends_at,
        status="recruiting",
    )
    db.session.add(other)
    db.session.commit()
    reg_b, _ = register(reg_a.prospect, other, None)
    db.session.commit()
    a_sms, a_email, a_call, a_last = rows(reg_a, "invitation")
    b_sms, b_email, _, b_last = rows(reg_b, "invitation")
    # Sent 31 days ago: outside the 30 days.
    a_last.status, a_last.sent_at = "sent", utcnow() - timedelta(days=31)
    db.session.commit()
    for row in (a_sms, a_email, a_call, b_sms, b_email):  # 4 messages + 1 call task
        assert sending.send(make_due(row).id) == "sent", row.reason
    assert sending.send(make_due(b_last).id) == "skipped"
    assert "Plafond" in b_last.reason and "4 messages" in b_last.reason
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 4


# --- two dispatchers at once, then real workers ----------------------------------------------


def test_two_dispatchers_at_once_then_workers_send_each_row_once(
    app, world, open_window, fast_pace, monkeypatch, sms_via_twilio: FakeTwilioServer
):
    phones = []
    for _ in range(20):
        reg = reachable(world)
        only_first_sms_due(reg)
        phones.append(reg.prospect.phone)
    db.session.remove()
    results: list[dict] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run_dispatcher() -> None:
        try:
            with app.app_context():
                barrier.wait()
                results.extend(dispatcher.run() for _ in range(2))
                db.session.remove()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run_dispatcher) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sum(int(r["enqueued"]) for r in results) == 20
    assert get_queue(MESSAGES).count == 20
    drain(app, monkeypatch)
    assert sorted(r.form["To"] for r in sms_via_twilio.requests) == sorted(phones)
    sent = db.session.scalars(sa.select(FollowUp).where(FollowUp.status == "sent")).all()
    assert len(sent) == 20
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 20
    # Later passes and a second drain send nothing more.
    assert dispatcher.run()["enqueued"] == 0
    drain(app, monkeypatch)
    assert len(sms_via_twilio.requests) == 20


# --- a worker killed between "sending" and "sent" --------------------------------------------


@pytest.fixture
def worker_env(database_url, redis_url, tmp_path) -> dict[str, str]:
    return dict(
        os.environ,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY="worker-test",
        CRM_INSTANCE_DIR=str(tmp_path),
        CRM_SEND_DAYS="1-7",
        CRM_SEND_HOURS="00:00-23:59:59",
        CRM_SMS_RATE_PER_SECOND="100",
    )


@pytest.fixture
def worker_process() -> Iterator[list[subprocess.Popen]]:
    """Start `rq worker` subprocesses; any still running is killed after the test."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_a_worker_killed_during_the_provider_call_never_sends_again(
    app,
    world,
    open_window,
    fast_pace,
    monkeypatch,
    worker_env,
    worker_process,
    redis_url,
    tmp_path,
    sms_via_twilio: FakeTwilioServer,
):
    if is_holiday(to_local(utcnow()).date()):
        pytest.skip("jour férié : la fenêtre d'envoi du worker est fermée")
    reg = reachable(world)
    phone = reg.prospect.phone
    row = only_first_sms_due(reg)
    row_id = row.id
    sms_via_twilio.program(phone, delay=60)  # the provider call hangs until the kill
    assert dispatcher.run()["enqueued"] == 1
    db.session.remove()
    log = (tmp_path / "worker.log").open("w")
    env = dict(
        worker_env,
        TWILIO_ACCOUNT_SID=sms_via_twilio.account_sid,
        TWILIO_AUTH_TOKEN=sms_via_twilio.auth_token,
        TWILIO_SENDER="OpenLab",
        TWILIO_BASE_URL=sms_via_twilio.url,
    )
    command = [str(BIN / "rq"), "worker", "--burst", "-w", "rq.worker.SimpleWorker"]
    process = subprocess.Popen(
        [*command, "--url", redis_url, MESSAGES], env=env, stdout=log, stderr=log
    )
    worker_process.append(process)
    deadline = time.monotonic() + 60
    while to_number(sms_via_twilio, phone) == 0:
        assert process.poll() is None, (tmp_path / "worker.log").read_text()
        assert time.monotonic() < deadline, "the worker never called the provider"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # killed while Twilio has the request
    process.wait(10)
    row = db.session.get(FollowUp, row_id)
    assert row.status == "sending"
    assert db.session.get(Message, row.message_id).status == "sending"
    sms_via_twilio.program(phone)  # were it called again, the provider would answer at once
    # RQ delivers at least once: the job runs again in another worker.
    get_queue(MESSAGES).enqueue("workers.jobs.send_followup", row_id)
    drain(app, monkeypatch)
    row = db.session.get(FollowUp, row_id)
    assert (row.status, row.reason) == ("unknown", "Envoi interrompu : à vérifier.")
    # The dispatcher does not bring it back either, even long after.
    db.session.execute(
        sa.update(FollowUp)
        .where(FollowUp.id == row_id)
        .values(due_at=utcnow() - timedelta(days=1), updated_at=utcnow() - timedelta(hours=1))
    )
    db.session.commit()
    result = dispatcher.run()
    assert (result["enqueued"], result["requeued"], result["to_review"]) == (0, 0, 0)
    drain(app, monkeypatch)
    assert to_number(sms_via_twilio, phone) == 1
    assert db.session.get(FollowUp, row_id).status == "unknown"


# --- each error code's effect, and its line on the timeline ----------------------------------


INVALID, STOP, LATER, BLOCKED, HTTP = (
    (21211, 21614),
    (21610,),
    (30003, 30008),
    (30005, 30006, 30007),
    (429, 500, 503),
)


@pytest.mark.parametrize("code", [*INVALID, *STOP, *LATER, *BLOCKED, *HTTP])
def test_each_error_code_effect_and_timeline(
    world, open_window, fast_pace, sms_via_twilio: FakeTwilioServer, code
):
    reg = reachable(world)
    prospect, phone = reg.prospect, reg.prospect.phone
    if code in HTTP:
        sms_via_twilio.http_error(phone, code)
    else:
        sms_via_twilio.fail(phone, code)
    first, _, _, last = rows(reg, "invitation")
    started = utcnow()
    sending.send(make_due(first).id)
    assert first.attempts == 1
    tasks = list(db.session.scalars(sa.select(CallTask.kind)))
    [failure] = failures_on_timeline(prospect.id)
    assert failure.actor == "Automatique" and failure.lab == "Lab"
    if code in (*LATER, *HTTP):
        assert first.status == "scheduled"
        assert first.due_at >= started + timedelta(minutes=5) and first.queued_at is None
        assert prospect.phone == phone and prospect.allow_sms is True and tasks == []
        assert "Nouvel essai" in first.reason
        expected = describe_error_code(code) if code in LATER else f"HTTP {code}"
        assert expected in failure.detail
        return
    assert first.status == "failed"
    assert describe_error_code(code) in failure.detail
    if code in INVALID:
        assert prospect.phone is None and prospect.phone_invalid
        assert tasks == ["failed_sms"]
    elif code in STOP:
        assert prospect.allow_sms is False and tasks == []
        assert any("SMS retirée" in i.title for i in timeline.for_prospect(prospect.id))
    else:
        assert tasks == ["failed_sms"] and prospect.phone == phone
    if code in (*INVALID, *STOP, *BLOCKED):
        # The next SMS step is checked at send time and not sent.
        sms_via_twilio.reset()
        assert sending.send(make_due(last).id) == "skipped"
        assert sms_via_twilio.requests == []


def test_transient_errors_back_off_then_fail_without_side_effects(
    world, open_window, fast_pace, sms_via_twilio: FakeTwilioServer
):
    reg = reachable(world)
    sms_via_twilio.http_error(reg.prospect.phone, 503)
    row = rows(reg, "invitation")[0]
    delays = []
    for _ in range(10):
        started = utcnow()
        sending.send(make_due(row).id)
        if row.status != "scheduled":
            break
        delays.append(row.due_at - started)
    assert row.status == "failed"
    assert len(delays) == 3  # at most 3 retries: 5, 20 then 80 minutes
    assert delays[0] >= timedelta(minutes=5)
    for before, after in itertools.pairwise(delays):
        assert after >= before * 3.9  # ×4 each time
    assert db.session.scalar(sa.select(sa.func.count(CallTask.id))) == 0
    assert reg.prospect.allow_sms is True and reg.prospect.phone
    assert len(failures_on_timeline(reg.prospect_id)) == row.attempts == len(delays) + 1


def test_an_unreachable_provider_is_retried_not_reviewed(
    app, world, open_window, fast_pace, monkeypatch, sms_via_twilio: FakeTwilioServer
):
    import socket

    with socket.socket() as sock:  # a port nobody listens on: surely not sent
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setitem(app.config, "TWILIO_BASE_URL", closed)
    reg = reachable(world)
    row = make_due(rows(reg, "invitation")[0])
    assert sending.send(row.id) == "scheduled"
    assert row.attempts == 1 and "Nouvel essai" in row.reason


def test_retry_later_is_retried_three_times_with_5_20_80_minutes(
    world, open_window, fast_pace, sms_via_twilio: FakeTwilioServer
):
    code = 30008  # 30003 takes the same path (RetryLater)
    reg = reachable(world)
    sms_via_twilio.fail(reg.prospect.phone, code)
    row = rows(reg, "invitation")[0]
    delays = []
    for _ in range(10):
        started = utcnow()
        sending.send(make_due(row).id)
        if row.status != "scheduled":
            break
        delays.append(round((row.due_at - started) / timedelta(minutes=1)))
    assert row.status == "failed"
    assert len(sms_via_twilio.requests) == 4  # the first try and 3 retries
    assert delays == [5, 20, 80]


def test_a_retry_due_after_five_minutes_is_enqueued_again(
    app, world, open_window, fast_pace, monkeypatch, sms_via_twilio: FakeTwilioServer
):
    reg = reachable(world)
    sms_via_twilio.fail(reg.prospect.phone, 30003)
    row = only_first_sms_due(reg)
    assert dispatcher.run()["enqueued"] == 1
    drain(app, monkeypatch)
    assert (row.status, row.attempts) == ("scheduled", 1)
    sms_via_twilio.program(reg.prospect.phone)  # the handset is back
    make_due(row, "scheduled")  # five minutes later (the first job's result is still kept)
    result = dispatcher.run()
    drain(app, monkeypatch)
    assert (result["enqueued"], row.status) == (1, "sent")


# --- failures without a provider answer are on the timeline too ------------------------------


def test_a_template_failure_is_on_the_timeline(world, open_window, fast_pace):
    own = Sequence(lab_id=world["lab"].id, kind="invitation", name="Invitation du lab")
    own.steps.append(
        SequenceStep(position=1, channel="sms", offset_minutes=60, body="Bonjour {inconnu}")
    )
    db.session.add(own)
    db.session.commit()
    reg = reachable(world)
    (row,) = rows(reg)
    assert sending.send(make_due(row).id) == "failed"
    [failure] = failures_on_timeline(reg.prospect_id)
    assert "Champ inconnu" in failure.detail


def test_an_interrupted_send_is_on_the_timeline(world, open_window):
    reg = reachable(world)
    row = rows(reg, "invitation")[0]
    row.status = "sending"
    db.session.commit()
    assert sending.send(row.id) == "unknown"
    [failure] = failures_on_timeline(reg.prospect_id)
    assert "vérifier" in failure.detail


# --- send-time re-checks ---------------------------------------------------------------------


def test_an_opt_out_only_stops_its_own_channel(world, open_window, fast_pace):
    no_sms = reachable(world, email="pas-de-sms@example.fr", allow_sms=False)
    sms, email, _, _ = rows(no_sms, "invitation")
    assert sending.send(make_due(sms).id) == "skipped" and "SMS" in sms.reason
    assert sending.send(make_due(email).id) == "sent"
    no_email = reachable(world, email="pas-de-mail@example.fr", allow_email=False)
    sms, email, _, _ = rows(no_email, "invitation")
    assert sending.send(make_due(email).id) == "skipped" and "e-mails" in email.reason
    assert sending.send(make_due(sms).id) == "sent"


def test_a_declined_person_is_left_alone_for_sixty_days_only(world, open_window, fast_pace):
    reg = reachable(world)
    other = Lab(
        title="Autre", starts_at=reg.lab.starts_at, ends_at=reg.lab.ends_at, status="recruiting"
    )
    db.session.add(other)
    db.session.commit()
    other_reg, _ = register(reg.prospect, other, None)
    transition(other_reg, "declined", None, "pas disponible")
    db.session.commit()
    first, _, _, last = rows(reg, "invitation")

    def decline_age(days: int) -> None:
        db.session.execute(
            sa.update(Event)
            .where(Event.kind == "registration.status", Event.to_status == "declined")
            .values(created_at=utcnow() - timedelta(days=days))
        )
        db.session.commit()

    decline_age(59)
    assert sending.send(make_due(first).id) == "skipped" and "60 jours" in first.reason
    decline_age(61)
    assert sending.send(make_due(last).id) == "sent"


# --- SMS pacing, Twilio parameters, e-mail format --------------------------------------------


def test_the_send_job_paces_sms_per_sender(app, world, open_window, monkeypatch):
    monkeypatch.setitem(app.config, "SMS_RATE_PER_SECOND", 4.0)
    regs = [reachable(world) for _ in range(3)]
    started = time.monotonic()
    for reg in regs:
        assert sending.send(make_due(rows(reg, "invitation")[0]).id) == "sent"
    assert time.monotonic() - started >= 0.45  # 3 slots at 4 per second


def test_pacing_is_shared_by_concurrent_workers(app, monkeypatch):
    monkeypatch.setitem(app.config, "SMS_RATE_PER_SECOND", 5.0)
    finished: list[float] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        with app.app_context():
            barrier.wait()
            for _ in range(3):
                sending.pace_sms("OpenLab")
                finished.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    finished.sort()
    assert len(finished) == 6
    gaps = [b - a for a, b in itertools.pairwise(finished)]
    assert min(gaps) >= 0.15  # one slot every 0.2 s whichever worker takes it


def test_the_send_job_gives_twilio_the_validity_period_and_sender(
    app, world, open_window, fast_pace, monkeypatch, sms_via_twilio: FakeTwilioServer
):
    service = "MG" + "a1" * 16
    monkeypatch.setitem(app.config, "TWILIO_SENDER", service)
    reg = reachable(world)
    assert sending.send(make_due(rows(reg, "invitation")[0]).id) == "sent"
    [request] = sms_via_twilio.requests
    assert request.form["ValidityPeriod"] == "14400"
    assert request.form["MessagingServiceSid"] == service and "From" not in request.form


def test_the_send_job_gives_twilio_a_status_callback(
    world, open_window, fast_pace, sms_via_twilio: FakeTwilioServer
):
    """Every SMS of the send job tells Twilio where to post its delivery receipts."""
    reg = reachable(world)
    assert sending.send(make_due(rows(reg, "invitation")[0]).id) == "sent"
    [request] = sms_via_twilio.requests
    assert request.form.get("StatusCallback", "").startswith("http://localhost/")


def test_the_send_job_email_over_smtp_has_the_unsubscribe_link_and_headers(
    world, open_window, email_via_smtp: FakeSmtpServer
):
    reg = reachable(world, first_name="Léa", email="lea@example.fr")
    row = make_due(rows(reg, "invitation")[1])
    assert sending.send(row.id) == "sent"
    [mail] = email_via_smtp.messages
    received = mail.message
    link = db.session.get(Message, row.message_id).list_unsubscribe
    assert link.startswith("http://localhost/r/")
    assert received["List-Unsubscribe"] == f"<{link}>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = received.get_body(preferencelist=("plain",)).get_content()
    assert link in text and "Bonjour Léa" in text and "Open Lab" in text


def test_the_send_job_email_has_an_html_part_with_the_link(
    world, open_window, email_via_smtp: FakeSmtpServer
):
    reg = reachable(world, email="lea@example.fr")
    row = make_due(rows(reg, "invitation")[1])
    assert sending.send(row.id) == "sent"
    received = email_via_smtp.messages[0].message
    assert received.get_content_type() == "multipart/alternative"
    html = received.get_body(preferencelist=("html",)).get_content()
    link = db.session.get(Message, row.message_id).list_unsubscribe
    assert link in html
