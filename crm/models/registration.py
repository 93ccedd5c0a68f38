"""A prospect's participation in one lab, moved only by crm.services.registrations."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.extensions import db
from crm.models.base import TimestampMixin, enum_check
from crm.models.lab import Lab
from crm.models.prospect import Prospect
from crm.timeutil import UTCDateTime, utcnow

REGISTRATION_STATUSES = (
    "to_contact",
    "contacted",
    "interested",
    "confirmed",
    "attended",
    "no_show",
    "declined",
    "disqualified",
    "cancelled",
    "waitlisted",
)
REGISTRATION_STATUS_LABELS = {
    "to_contact": "À contacter",
    "contacted": "Contacté",
    "interested": "Intéressé",
    "confirmed": "Confirmé",
    "attended": "Présent",
    "no_show": "Absent",
    "declined": "A décliné",
    "disqualified": "Hors cible",
    "cancelled": "Annulé",
    "waitlisted": "Liste d'attente",
}


class Registration(TimestampMixin, db.Model):
    __tablename__ = "registrations"
    __table_args__ = (
        sa.UniqueConstraint("prospect_id", "lab_id", name="uq_registrations_prospect_lab"),
        sa.Index("ix_registrations_lab_status", "lab_id", "status"),
        sa.Index(
            "ix_registrations_call_queue",
            "lab_id",
            "call_bucket",
            "call_rank",
            "next_call_at",
            "id",
        ),
        sa.Index("ix_registrations_lab_waitlist", "lab_id", "status", "waitlisted_at"),
        enum_check("status", REGISTRATION_STATUSES, "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    prospect_id: Mapped[int] = mapped_column(
        sa.ForeignKey("prospects.id", ondelete="CASCADE"), index=True
    )
    lab_id: Mapped[int] = mapped_column(sa.ForeignKey("labs.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(sa.String(16), default="to_contact")
    # The callers' queue reads these columns through one index (crm.services.call_queue):
    # call_bucket is 2 for "interested", 3 for "not reached yet", None when not to be called;
    # next_call_at is when the person may be served (created, or after a retry delay).
    call_bucket: Mapped[int | None] = mapped_column(default=3)
    call_rank: Mapped[int] = mapped_column(default=0, server_default="0")
    next_call_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    last_call_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Waiting list: rank is the order of waitlisted_at; offers_made counts the places offered
    # (at most 3 per lab, see crm.services.waitlist).
    waitlisted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    offers_made: Mapped[int] = mapped_column(default=0, server_default="0")
    # Lab day: when the person was checked in, and their workshop group (1, 2...).
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    group_no: Mapped[int | None] = mapped_column()
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}

    prospect: Mapped[Prospect] = relationship()
    lab: Mapped[Lab] = relationship()

    @property
    def status_label(self) -> str:
        return REGISTRATION_STATUS_LABELS[self.status]
