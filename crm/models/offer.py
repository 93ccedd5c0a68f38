"""Places offered to people on a lab's waiting list (crm.services.waitlist).

An offer is `scheduled` (waiting for the send window), then `sent` with its `expires_at`;
it ends `accepted`, `expired` (no answer in time: the place goes to the next person) or
`cancelled` (the person declined, or the place was taken back). One row per offer: a person
is offered a place at most 3 times per lab (`number` 1 to 3, unique per registration).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.extensions import db
from crm.models.base import enum_check
from crm.timeutil import UTCDateTime, utcnow

OFFER_STATUSES = ("scheduled", "sent", "accepted", "expired", "cancelled")
OFFER_STATUS_LABELS = {
    "scheduled": "Prête à partir",
    "sent": "En attente de réponse",
    "accepted": "Acceptée",
    "expired": "Expirée",
    "cancelled": "Annulée",
}
# Offers that hold a place: the lab counts them with the confirmed people.
HOLDING_STATUSES = ("scheduled", "sent")


class PlaceOffer(db.Model):
    __tablename__ = "place_offers"
    __table_args__ = (
        sa.UniqueConstraint("registration_id", "number", name="uq_place_offers_number"),
        sa.Index("ix_place_offers_lab_status", "lab_id", "status"),
        sa.Index("ix_place_offers_status_expires", "status", "expires_at"),
        enum_check("status", OFFER_STATUSES, "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registrations.id", ondelete="CASCADE"), index=True
    )
    lab_id: Mapped[int] = mapped_column(sa.ForeignKey("labs.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(sa.String(12), default="scheduled")
    channel: Mapped[str | None] = mapped_column(sa.String(8))  # how it was sent: sms / email
    message_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("messages.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(sa.Text, default="")

    registration = relationship("Registration")

    @property
    def status_label(self) -> str:
        return OFFER_STATUS_LABELS[self.status]
