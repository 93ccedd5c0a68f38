"""The append-only journal: timelines and dashboards are read from it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.extensions import db
from crm.timeutil import UTCDateTime, utcnow


class Event(db.Model):
    __tablename__ = "events"
    __table_args__ = (
        sa.Index("ix_events_prospect_created", "prospect_id", "created_at"),
        sa.Index("ix_events_lab_kind", "lab_id", "kind"),
        # The funnel's pass over status changes, per registration, from the index alone.
        sa.Index(
            "ix_events_status_facts",
            "registration_id",
            "to_status",
            "created_at",
            postgresql_where=sa.text("kind = 'registration.status'"),
            sqlite_where=sa.text("kind = 'registration.status'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(sa.String(40))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    prospect_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("prospects.id", ondelete="SET NULL")
    )
    lab_id: Mapped[int | None] = mapped_column(sa.ForeignKey("labs.id", ondelete="SET NULL"))
    registration_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("registrations.id", ondelete="SET NULL")
    )
    from_status: Mapped[str | None] = mapped_column(sa.String(16))
    to_status: Mapped[str | None] = mapped_column(sa.String(16))
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)

    actor = relationship("User")


class AppendOnlyError(RuntimeError):
    pass


@sa_event.listens_for(Event, "before_update")
@sa_event.listens_for(Event, "before_delete")
def _refuse_change(mapper: Any, connection: Any, target: Event) -> None:
    raise AppendOnlyError("events are append-only")
