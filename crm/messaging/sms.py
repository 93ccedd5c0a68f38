"""Send one SMS (the outbox for now: the Twilio/SMTP backends come with the follow-up engine)."""

from __future__ import annotations

from crm.messaging import outbox
from crm.models import Message


def send_sms(to_e164: str, body: str, prospect_id: int | None = None) -> Message:
    message = Message(
        channel="sms", backend="", to_address=to_e164, body=body, prospect_id=prospect_id
    )
    return outbox.deliver(message)
