"""Follow-up sequences (invitation, reminders, thank you) and one row per due step.

A `FollowUp` row is the record of what is due and what was sent for one registration and one
sequence step (unique together): Redis only carries the send job. Life of a row:
`scheduled` → `queued` (claimed by the dispatcher) → `sending` (committed before the provider
call) → `sent` → `delivered`; or `cancelled` / `skipped` / `failed` with a French `reason`;
`unknown` when a worker died during the provider call (a manager reviews it, never resent).

Step timing: `offset_minutes` is signed, from the trigger (the registration for invitations,
the lab start for reminders, the lab end for thank you). When `day_time` is set (e.g. 08:30),
the step is due that local wall-clock time (CRM_TIMEZONE) on the day of trigger + offset:
the "morning of the lab" reminder is offset 0 with day_time 08:30 (then moved into the send
window, 10:00 by default, and skipped if that is after the lab start).
"""

from __future__ import annotations

from datetime import datetime, time

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.extensions import db
from crm.models.base import TimestampMixin, enum_check
from crm.timeutil import UTCDateTime

SEQUENCE_KINDS = ("invitation", "reminders", "thank_you")
SEQUENCE_KIND_LABELS = {
    "invitation": "Invitation",
    "reminders": "Rappels avant le lab",
    "thank_you": "Remerciement",
}
STEP_CHANNELS = ("sms", "email", "call")
STEP_CHANNEL_LABELS = {"sms": "SMS", "email": "E-mail", "call": "Tâche d'appel"}
FOLLOWUP_STATUSES = (
    "scheduled",
    "queued",
    "sending",
    "sent",
    "delivered",
    "failed",
    "cancelled",
    "skipped",
    "unknown",
)
FOLLOWUP_STATUS_LABELS = {
    "scheduled": "Programmé",
    "queued": "En file d'envoi",
    "sending": "En cours d'envoi",
    "sent": "Envoyé",
    "delivered": "Reçu",
    "failed": "Échec",
    "cancelled": "Annulé",
    "skipped": "Non envoyé",
    "unknown": "À vérifier",
}
OPEN_STATUSES = ("scheduled", "queued")


class Sequence(TimestampMixin, db.Model):
    __tablename__ = "sequences"
    __table_args__ = (
        enum_check("kind", SEQUENCE_KINDS, "kind"),
        sa.Index("ix_sequences_lab_kind", "lab_id", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int | None] = mapped_column(sa.ForeignKey("labs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = mapped_column(sa.String(120))

    steps: Mapped[list[SequenceStep]] = relationship(
        back_populates="sequence", order_by="SequenceStep.position", cascade="all, delete-orphan"
    )


class SequenceStep(db.Model):
    __tablename__ = "sequence_steps"
    __table_args__ = (
        sa.UniqueConstraint("sequence_id", "position", name="uq_sequence_steps_position"),
        enum_check("channel", STEP_CHANNELS, "channel"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sequence_id: Mapped[int] = mapped_column(sa.ForeignKey("sequences.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column()
    channel: Mapped[str] = mapped_column(sa.String(8))
    offset_minutes: Mapped[int] = mapped_column()
    day_time: Mapped[time | None] = mapped_column(sa.Time)  # local wall clock, see docstring
    subject: Mapped[str] = mapped_column(sa.String(255), default="")
    body: Mapped[str] = mapped_column(sa.Text, default="")
    # A removed step keeps its row (its follow-ups are the history of what was sent).
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    sequence: Mapped[Sequence] = relationship(back_populates="steps")


class FollowUp(TimestampMixin, db.Model):
    __tablename__ = "followups"
    __table_args__ = (
        sa.UniqueConstraint("registration_id", "step_id", name="uq_followups_registration_step"),
        enum_check("status", FOLLOWUP_STATUSES, "status"),
        # The dispatcher: due rows (status = 'scheduled', due_at <= now) and stuck 'queued' rows.
        sa.Index("ix_followups_status_due", "status", "due_at"),
        sa.Index("ix_followups_status_queued", "status", "queued_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registrations.id", ondelete="CASCADE"), index=True
    )
    step_id: Mapped[int] = mapped_column(sa.ForeignKey("sequence_steps.id", ondelete="CASCADE"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(12), default="scheduled")
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    message_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("messages.id", ondelete="SET NULL")
    )
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    step: Mapped[SequenceStep] = relationship()
    registration = relationship("Registration")

    @property
    def status_label(self) -> str:
        return FOLLOWUP_STATUS_LABELS[self.status]
