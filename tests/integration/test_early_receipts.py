"""A delivery receipt that comes before its send is recorded (the worker was waiting for the
database) is kept, then applied by the dispatcher's pass once the message is known."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from crm.extensions import db
from crm.models import EarlyReceipt, FollowUp, Message
from crm.services import dispatcher
from crm.timeutil import utcnow
from tests.integration.test_webhooks import PUBLIC, receipt, sent_sms  # noqa: F401

pytest_plugins = ["tests.fakes"]


def test_a_receipt_before_the_send_is_recorded_waits_then_applies(sent_sms, app):  # noqa: F811
    _reg, row, message = sent_sms
    sid = message.provider_id
    # As between Twilio's answer and the worker's record of it.
    message.provider_id, message.status = None, "sending"
    row.status = "sending"
    db.session.commit()
    client = app.test_client()
    assert receipt(client, sid, "delivered").status_code == 204
    kept = db.session.scalar(sa.select(EarlyReceipt))
    assert kept.provider_id == sid and "To" not in kept.params  # no phone number kept
    assert dispatcher.run()["early_receipts"] == 0  # the message is still unknown
    message.provider_id, message.status, row.status = sid, "sent", "sent"  # the record
    db.session.commit()
    assert dispatcher.run()["early_receipts"] == 1
    db.session.refresh(message)
    assert message.status == "delivered"
    assert db.session.get(FollowUp, row.id).status == "delivered"
    assert db.session.scalar(sa.select(sa.func.count(EarlyReceipt.id))) == 0
    assert receipt(client, sid, "sent").status_code == 204  # a late one still changes nothing
    assert db.session.get(Message, message.id).status == "delivered"


def test_a_receipt_whose_message_never_comes_is_dropped_after_two_days(world, app):
    db.session.add(
        EarlyReceipt(
            provider_id="SM" + "7" * 32,
            params={"MessageSid": "SM" + "7" * 32, "MessageStatus": "delivered"},
            received_at=utcnow() - timedelta(days=3),
        )
    )
    db.session.commit()
    dispatcher.run()
    assert db.session.scalar(sa.select(sa.func.count(EarlyReceipt.id))) == 0
