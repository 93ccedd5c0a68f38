"""Outreach calls and the call tasks that feed the callers' queue."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.extensions import db
from crm.models.base import enum_check
from crm.timeutil import UTCDateTime, utcnow

CALL_OUTCOMES = (
    "no_answer",
    "voicemail",
    "wrong_number",
    "callback",
    "interested",
    "confirmed",
    "declined",
    "not_potential_user",
)
CALL_OUTCOME_LABELS = {
    "no_answer": "Pas de réponse",
    "voicemail": "Message laissé",
    "wrong_number": "Mauvais numéro",
    "callback": "À rappeler",
    "interested": "Intéressé·e",
    "confirmed": "Confirmé·e",
    "declined": "Refus",
    "not_potential_user": "Hors cible",
}
# Outcomes where the person answered the phone.
REACHED_OUTCOMES = frozenset(
    {"callback", "interested", "confirmed", "declined", "not_potential_user"}
)

TASK_KINDS = ("callback", "followup_call", "failed_sms", "to_read")
TASK_KIND_LABELS = {
    "callback": "Rappel demandé",
    "followup_call": "Relance téléphonique",
    "failed_sms": "SMS non distribué",
    "to_read": "Réponse à lire",
}
TASK_STATUSES = ("open", "done", "cancelled")


class Call(db.Model):
    __tablename__ = "calls"
    __table_args__ = (
        enum_check("outcome", CALL_OUTCOMES, "outcome"),
        sa.Index("ix_calls_caller_created", "caller_id", "created_at"),
        sa.Index("ix_calls_lab_created", "lab_id", "created_at"),
        # The funnel reads every call per registration from this index alone.
        sa.Index("ix_calls_registration_facts", "registration_id", "created_at", "outcome"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    prospect_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("prospects.id", ondelete="SET NULL"), index=True
    )
    lab_id: Mapped[int | None] = mapped_column(sa.ForeignKey("labs.id", ondelete="SET NULL"))
    registration_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("registrations.id", ondelete="SET NULL")
    )
    caller_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    outcome: Mapped[str] = mapped_column(sa.String(24))
    notes: Mapped[str] = mapped_column(sa.Text, default="")
    callback_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    caller = relationship("User")

    @property
    def outcome_label(self) -> str:
        return CALL_OUTCOME_LABELS[self.outcome]


class CallTask(db.Model):
    """Work for the callers on one registration: a callback, a relance call, a reply to read."""

    __tablename__ = "call_tasks"
    __table_args__ = (
        enum_check("kind", TASK_KINDS, "kind"),
        enum_check("status", TASK_STATUSES, "status"),
        sa.Index("ix_call_tasks_queue", "lab_id", "status", "priority", "due_at", "id"),
        sa.Index("ix_call_tasks_registration_status", "registration_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registrations.id", ondelete="CASCADE")
    )
    lab_id: Mapped[int] = mapped_column(sa.ForeignKey("labs.id", ondelete="CASCADE"))
    prospect_id: Mapped[int] = mapped_column(sa.ForeignKey("prospects.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(12), default="open")
    priority: Mapped[int] = mapped_column(default=1)  # 0 for callbacks: they come first
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(sa.Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def kind_label(self) -> str:
        return TASK_KIND_LABELS[self.kind]
