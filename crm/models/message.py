"""Every outgoing SMS and e-mail, whatever the backend (outbox, Twilio, SMTP).

Life of a row: `pending` (created, not handed to the provider yet) → `sending` (committed just
before the provider is called) → `sent` (the provider accepted it; `provider_id` is its id) →
`delivered` / `failed` (delivery receipts). A failure at send time leaves `failed`, or
`unknown` when the provider may have accepted it anyway (a timeout): such a row is never sent
again automatically. A row found in `sending` later means a worker died during the call.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm.extensions import db
from crm.models.base import enum_check
from crm.timeutil import UTCDateTime, utcnow

MESSAGE_CHANNELS = ("sms", "email")
MESSAGE_STATUSES = ("pending", "sending", "sent", "delivered", "failed", "unknown")
MESSAGE_STATUS_LABELS = {
    "pending": "En attente",
    "sending": "En cours d'envoi",
    "sent": "Envoyé",
    "delivered": "Reçu",
    "failed": "Échec",
    "unknown": "Incertain",
}


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (
        enum_check("channel", MESSAGE_CHANNELS, "channel"),
        enum_check("status", MESSAGE_STATUSES, "status"),
        sa.Index("ix_messages_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(8))
    backend: Mapped[str] = mapped_column(sa.String(16))
    # SMS: the TWILIO_SENDER used (number, short code, name or MG…); e-mail: MAIL_FROM.
    sender: Mapped[str] = mapped_column(sa.String(255), default="")
    to_address: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str] = mapped_column(sa.String(255), default="")
    body: Mapped[str] = mapped_column(sa.Text)  # the SMS text, or the e-mail's text part
    html: Mapped[str | None] = mapped_column(sa.Text)  # the e-mail's HTML part, if any
    list_unsubscribe: Mapped[str | None] = mapped_column(sa.String(1000))  # e-mail only
    encoding: Mapped[str | None] = mapped_column(sa.String(8))  # SMS: GSM-7 or UCS-2
    segments: Mapped[int | None] = mapped_column(sa.Integer)  # SMS: billed segments
    status: Mapped[str] = mapped_column(sa.String(16), default="sending")
    provider_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    provider_status: Mapped[str | None] = mapped_column(sa.String(32))  # Twilio's own status
    error: Mapped[str] = mapped_column(sa.Text, default="")  # French, shown to users
    error_code: Mapped[int | None] = mapped_column(sa.Integer)  # Twilio code / SMTP reply
    error_kind: Mapped[str | None] = mapped_column(sa.String(16))  # crm.messaging.errors kinds
    prospect_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("prospects.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def status_label(self) -> str:
        return MESSAGE_STATUS_LABELS.get(self.status, self.status)


class EarlyReceipt(db.Model):
    """A delivery receipt for a message id not recorded yet: Twilio answered the send, then
    posted the receipt before the worker could record the answer (the database was briefly
    unreachable, say). It waits here and is applied by the dispatcher's pass once the
    message is known (crm.services.receipts.apply_early); dropped after EARLY_RECEIPT_DAYS."""

    __tablename__ = "early_receipts"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    params: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
