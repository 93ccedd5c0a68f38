"""The send job's commits around the provider call, counted: one commit puts the follow-up
and its Message in `sending` before the provider is called (another connection sees both),
one commit stores the answer, the row's `sent` and its event. And the number of SQL
statements a send takes, so that a change that adds round trips shows here."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.messaging import smtp_backend, twilio_backend
from crm.models import Event, FollowUp, Message
from crm.services import sending
from crm.timeutil import utcnow
from tests.factories import person

if TYPE_CHECKING:
    from tests.fakes import FakeTwilioServer

pytest_plugins = ["tests.fakes"]


def queued_row(world, channel: str) -> tuple[int, str]:
    """A queued row of the invitation's first step on `channel`: its id and phone number.
    The session is emptied, as a worker's job starts from a fresh one."""
    registration = person(
        world, "to_contact", allow_sms=True, allow_email=True, email=f"p{utcnow():%f}@test.fr"
    )
    row = next(
        r
        for r in db.session.scalars(
            sa.select(FollowUp).where(FollowUp.registration_id == registration.id)
        )
        if r.step.sequence.kind == "invitation" and r.step.channel == channel
    )
    row.status, row.due_at = "queued", utcnow() - timedelta(minutes=1)
    db.session.commit()
    found = (row.id, str(registration.prospect.phone))
    db.session.remove()
    return found


class Recorder:
    """The engine's commits and statements, and what another connection sees at the provider
    call (the state a worker killed at that instant would leave)."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.statements: Counter[str] = Counter()
        self.seen: list[Any] = []
        self.peeking = False

    def reset(self) -> None:
        self.log.clear()
        self.statements.clear()

    def statement(self, conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if not self.peeking:
            self.statements[statement.split(None, 1)[0].upper()] += 1

    def commit(self, conn: Any) -> None:
        if not self.peeking:
            self.log.append("commit")

    def provider(self, row_id: int) -> None:
        self.log.append("provider")
        self.peeking = True
        try:
            with db.engine.connect() as other:
                found = other.execute(
                    sa.select(FollowUp.status, Message.status)
                    .outerjoin(Message, Message.id == FollowUp.message_id)
                    .where(FollowUp.id == row_id)
                ).one()
                self.seen.append(tuple(found))
        finally:
            self.peeking = False


@pytest.fixture
def recorder(app_ctx):
    recorder = Recorder()
    sa.event.listen(db.engine, "before_cursor_execute", recorder.statement)
    sa.event.listen(db.engine, "commit", recorder.commit)
    yield recorder
    sa.event.remove(db.engine, "before_cursor_execute", recorder.statement)
    sa.event.remove(db.engine, "commit", recorder.commit)


def spy_on(monkeypatch, module: Any, recorder: Recorder, row_id: int) -> None:
    original = module.send

    def send(*args: Any, **kwargs: Any) -> Any:
        recorder.provider(row_id)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "send", send)


def test_an_sms_send_is_one_commit_before_the_provider_and_one_after(
    world, open_window, fast_pace, sms_via_twilio: FakeTwilioServer, recorder, monkeypatch
):
    row_id, _ = queued_row(world, "sms")
    spy_on(monkeypatch, twilio_backend, recorder, row_id)
    recorder.reset()
    assert sending.send(row_id) == "sent"
    assert recorder.log == ["commit", "provider", "commit"]
    assert recorder.seen == [("sending", "sending")]
    # The row with its context, the counts of check(), the Message, the move to `sending`;
    # then the Message, the row and the event. No reload after a commit.
    assert recorder.statements == {"SELECT": 2, "INSERT": 2, "UPDATE": 3}
    row = db.session.get(FollowUp, row_id)
    message = db.session.get(Message, row.message_id)
    assert (message.status, row.status) == ("sent", "sent")
    assert message.provider_id == sms_via_twilio.sent[0]["sid"]
    assert (
        db.session.scalar(sa.select(sa.func.count(Event.id)).where(Event.kind == "message.sent"))
        == 1
    )


def test_an_email_send_is_one_commit_before_the_server_and_one_after(
    world, open_window, email_via_smtp, recorder, monkeypatch
):
    row_id, _ = queued_row(world, "email")
    spy_on(monkeypatch, smtp_backend, recorder, row_id)
    recorder.reset()
    assert sending.send(row_id) == "sent"
    assert recorder.log == ["commit", "provider", "commit"]
    assert recorder.seen == [("sending", "sending")]
    row = db.session.get(FollowUp, row_id)
    assert db.session.get(Message, row.message_id).status == "sent"


def test_a_provider_failure_is_committed_on_both_rows(
    world, open_window, fast_pace, sms_via_twilio: FakeTwilioServer, recorder, monkeypatch
):
    row_id, phone = queued_row(world, "sms")
    sms_via_twilio.fail(phone, 21610)
    spy_on(monkeypatch, twilio_backend, recorder, row_id)
    recorder.reset()
    assert sending.send(row_id) == "failed"
    assert recorder.log[:2] == ["commit", "provider"]
    assert recorder.seen == [("sending", "sending")]
    row = db.session.get(FollowUp, row_id)
    assert db.session.get(Message, row.message_id).status == "failed"
    assert row.registration.prospect.allow_sms is False
