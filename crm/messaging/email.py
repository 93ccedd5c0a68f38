"""Send one e-mail (the outbox for now: the Twilio/SMTP backends come with the follow-up engine)."""

from __future__ import annotations

from crm.messaging import outbox
from crm.models import Message


def send_email(to: str, subject: str, body: str, prospect_id: int | None = None) -> Message:
    message = Message(
        channel="email",
        backend="",
        to_address=to,
        subject=subject,
        body=body,
        prospect_id=prospect_id,
    )
    return outbox.deliver(message)
