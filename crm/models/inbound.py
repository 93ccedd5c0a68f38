"""Every SMS a person sends us, stored raw before anything else (Twilio inbound webhook).

`message_sid` is unique: Twilio retries a webhook it thinks failed, and the same message
must be processed once. `outcome` says what became of it:
- `received`: stored, not processed yet (or processing failed: a person reads it);
- `applied`: understood and acted on (confirmation, refusal, STOP, START, help);
- `to_read`: not understood or ambiguous: a "to read" task was given to the callers;
- `unknown_sender`: no prospect has this number: listed for a manager;
- `read`: a person handled it by hand.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.extensions import db
from crm.models.base import enum_check
from crm.timeutil import UTCDateTime, utcnow

INBOUND_OUTCOMES = ("received", "applied", "to_read", "unknown_sender", "read")
INBOUND_OUTCOME_LABELS = {
    "received": "Reçu, non traité",
    "applied": "Pris en compte",
    "to_read": "À lire par l'équipe",
    "unknown_sender": "Numéro inconnu",
    "read": "Lu et traité",
}
# Outcomes a person still has to look at.
INBOUND_TO_HANDLE = ("received", "to_read", "unknown_sender")


class InboundMessage(db.Model):
    __tablename__ = "inbound_messages"
    __table_args__ = (
        enum_check("outcome", INBOUND_OUTCOMES, "outcome"),
        sa.Index("ix_inbound_messages_outcome_received", "outcome", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_sid: Mapped[str] = mapped_column(sa.String(64), unique=True)
    from_number: Mapped[str] = mapped_column(sa.String(40))  # as Twilio sent it
    from_e164: Mapped[str | None] = mapped_column(sa.String(20), index=True)
    to_number: Mapped[str] = mapped_column(sa.String(40), default="")
    body: Mapped[str] = mapped_column(sa.Text, default="")
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)  # every form field
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    prospect_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("prospects.id", ondelete="SET NULL"), index=True
    )
    registration_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("registrations.id", ondelete="SET NULL")
    )
    understood: Mapped[str | None] = mapped_column(sa.String(12))  # crm.services.reply_parser
    outcome: Mapped[str] = mapped_column(sa.String(16), default="received")
    note: Mapped[str] = mapped_column(sa.Text, default="")  # French: what was done, or why not
    handled_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    prospect = relationship("Prospect")
    registration = relationship("Registration")

    @property
    def outcome_label(self) -> str:
        return INBOUND_OUTCOME_LABELS[self.outcome]
