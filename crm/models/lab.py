"""Open labs and the sources prospects come from."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.extensions import db
from crm.models.base import TimestampMixin, enum_check
from crm.timeutil import UTCDateTime

LAB_STATUSES = ("draft", "recruiting", "closed", "done")
LAB_STATUS_LABELS = {
    "draft": "Brouillon",
    "recruiting": "Recrutement en cours",
    "closed": "Inscriptions closes",
    "done": "Terminé",
}


class Lab(TimestampMixin, db.Model):
    __tablename__ = "labs"
    __table_args__ = (
        enum_check("status", LAB_STATUSES, "status"),
        sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        sa.CheckConstraint("capacity > 0 AND target > 0", name="positive_sizes"),
        sa.CheckConstraint("overbooking >= 0", name="overbooking_not_negative"),
        sa.CheckConstraint("offer_hours > 0", name="offer_hours_positive"),
        sa.CheckConstraint("group_size BETWEEN 5 AND 10", name="group_size_5_to_10"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    problem: Mapped[str] = mapped_column(sa.Text, default="")
    venue: Mapped[str] = mapped_column(sa.Text, default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    capacity: Mapped[int] = mapped_column(default=40)
    target: Mapped[int] = mapped_column(default=30)
    status: Mapped[str] = mapped_column(sa.String(16), default="draft", index=True)
    next_lab_id: Mapped[int | None] = mapped_column(sa.ForeignKey("labs.id", ondelete="SET NULL"))
    # Follow-up sending: a manager can pause it; the send window defaults to CRM_SEND_DAYS /
    # CRM_SEND_HOURS when these are empty (formats "1-5" and "10:00-20:00").
    sending_paused: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    send_days: Mapped[str | None] = mapped_column(sa.String(8))
    send_hours: Mapped[str | None] = mapped_column(sa.String(16))
    # Lab day: confirm up to capacity + overbooking (people who do not come), a waiting-list
    # offer stays valid offer_hours, workshop groups aim at group_size people (5 to 10).
    overbooking: Mapped[int] = mapped_column(default=0, server_default="0")
    offer_hours: Mapped[int] = mapped_column(default=24, server_default="24")
    group_size: Mapped[int] = mapped_column(default=8, server_default="8")

    next_lab: Mapped[Lab | None] = relationship(remote_side=[id], foreign_keys=[next_lab_id])

    @property
    def status_label(self) -> str:
        return LAB_STATUS_LABELS[self.status]


class Source(TimestampMixin, db.Model):
    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
