"""Every outgoing SMS and e-mail; with the outbox backends this is all that happens to them."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm.extensions import db
from crm.models.base import enum_check
from crm.timeutil import UTCDateTime, utcnow

MESSAGE_CHANNELS = ("sms", "email")
MESSAGE_STATUSES = ("sending", "sent", "delivered", "failed", "unknown")


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
    to_address: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str] = mapped_column(sa.String(255), default="")
    body: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), default="sending")
    provider_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    error: Mapped[str] = mapped_column(sa.Text, default="")
    prospect_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("prospects.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
