"""A prospect's participation in one lab, moved only by crm.services.registrations."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.extensions import db
from crm.models.base import TimestampMixin, enum_check
from crm.models.lab import Lab
from crm.models.prospect import Prospect

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
        enum_check("status", REGISTRATION_STATUSES, "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    prospect_id: Mapped[int] = mapped_column(
        sa.ForeignKey("prospects.id", ondelete="CASCADE"), index=True
    )
    lab_id: Mapped[int] = mapped_column(sa.ForeignKey("labs.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(sa.String(16), default="to_contact")

    prospect: Mapped[Prospect] = relationship()
    lab: Mapped[Lab] = relationship()

    @property
    def status_label(self) -> str:
        return REGISTRATION_STATUS_LABELS[self.status]
