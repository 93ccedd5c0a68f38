"""The outbox backend: a message is 'sent' by storing it, to be read in the app."""

from __future__ import annotations

from crm.extensions import db
from crm.models import Message
from crm.timeutil import utcnow


def deliver(message: Message) -> Message:
    message.backend = "outbox"
    message.status = "sent"
    message.sent_at = utcnow()
    db.session.add(message)
    db.session.commit()
    return message
