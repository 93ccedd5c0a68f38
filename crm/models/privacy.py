"""Data protection records: the audit trail and the suppression list.

`AuditEntry` says who viewed or changed a person's data, exported a list or erased someone
(append-only, like events: the ORM refuses to update or delete it). `Suppression` keeps a keyed
hash of an erased person's phone or e-mail, never the value itself, so that a later import
does not bring the person back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Mapped, mapped_column

from crm.extensions import db
from crm.models.base import enum_check
from crm.models.event import AppendOnlyError
from crm.timeutil import UTCDateTime, utcnow

SUPPRESSION_KINDS = ("phone", "email")


class AuditEntry(db.Model):
    __tablename__ = "audit_entries"
    __table_args__ = (
        sa.Index("ix_audit_entries_at", "at"),
        sa.Index("ix_audit_entries_object", "object_type", "object_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(sa.String(254), default="")  # kept if deleted
    action: Mapped[str] = mapped_column(sa.String(40))
    object_type: Mapped[str] = mapped_column(sa.String(40), default="")
    object_id: Mapped[int | None] = mapped_column()
    detail: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    ip: Mapped[str] = mapped_column(sa.String(64), default="")


@sa_event.listens_for(AuditEntry, "before_update")
@sa_event.listens_for(AuditEntry, "before_delete")
def _refuse_change(mapper: Any, connection: Any, target: AuditEntry) -> None:
    raise AppendOnlyError("the audit trail is append-only")


class Suppression(db.Model):
    __tablename__ = "suppressions"
    __table_args__ = (
        sa.UniqueConstraint("kind", "digest", name="uq_suppressions_kind_digest"),
        enum_check("kind", SUPPRESSION_KINDS, "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(8))
    digest: Mapped[str] = mapped_column(sa.String(64))  # HMAC-SHA256 of the normalised value
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(sa.String(200), default="")
