"""CSV imports of prospects: one batch per uploaded file, and the rows it rejected."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.extensions import db
from crm.models.base import enum_check
from crm.models.lab import Lab, Source
from crm.timeutil import UTCDateTime, utcnow

IMPORT_STATUSES = ("uploaded", "queued", "running", "done", "failed")
IMPORT_STATUS_LABELS = {
    "uploaded": "En attente de correspondance",
    "queued": "En file d'attente",
    "running": "En cours",
    "done": "Terminé",
    "failed": "Interrompu",
}


class ImportBatch(db.Model):
    __tablename__ = "import_batches"
    __table_args__ = (enum_check("status", IMPORT_STATUSES, "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(sa.String(255))
    # Relative to the instance folder: "imports/<id>.csv" (the web app and the worker share it).
    stored_path: Mapped[str] = mapped_column(sa.String(500), default="")
    size_bytes: Mapped[int] = mapped_column(default=0)
    encoding: Mapped[str] = mapped_column(sa.String(20))
    delimiter: Mapped[str] = mapped_column(sa.String(1))
    header: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    # One field name per column ("" = ignored), aligned with `header`.
    mapping: Mapped[list[str] | None] = mapped_column(sa.JSON)
    source_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sources.id"))
    lab_id: Mapped[int | None] = mapped_column(sa.ForeignKey("labs.id", ondelete="SET NULL"))
    # Contact permissions granted to the people imported, and the stated legal basis.
    channels: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    basis: Mapped[str] = mapped_column(sa.Text, default="")
    status: Mapped[str] = mapped_column(sa.String(16), default="uploaded", index=True)
    total_rows: Mapped[int] = mapped_column(default=0)
    processed_rows: Mapped[int] = mapped_column(default=0)
    created_count: Mapped[int] = mapped_column(default=0)
    merged_count: Mapped[int] = mapped_column(default=0)
    rejected_count: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(sa.Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    source: Mapped[Source | None] = relationship()
    lab: Mapped[Lab | None] = relationship()
    created_by = relationship("User")

    @property
    def status_label(self) -> str:
        return IMPORT_STATUS_LABELS[self.status]

    @property
    def in_progress(self) -> bool:
        return self.status in ("queued", "running")

    @property
    def percent(self) -> int:
        if self.status == "done" or not self.total_rows:
            return 100 if self.status == "done" else 0
        return min(100, self.processed_rows * 100 // self.total_rows)

    def progress(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "status_label": self.status_label,
            "total_rows": self.total_rows,
            "processed_rows": self.processed_rows,
            "percent": self.percent,
            "created": self.created_count,
            "merged": self.merged_count,
            "rejected": self.rejected_count,
            "error": self.error,
        }


class ImportRejection(db.Model):
    """A row that could not be imported: its line in the file, its text and why."""

    __tablename__ = "import_rejections"
    __table_args__ = (sa.Index("ix_import_rejections_import_line", "import_id", "line_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(sa.ForeignKey("import_batches.id", ondelete="CASCADE"))
    line_number: Mapped[int] = mapped_column()
    raw: Mapped[str] = mapped_column(sa.Text, default="")
    reason: Mapped[str] = mapped_column(sa.Text)
