"""People we may invite, and the permissions they gave us per channel."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from crm.extensions import db
from crm.models.base import TimestampMixin, enum_check
from crm.models.lab import Source
from crm.timeutil import UTCDateTime, utcnow

QUALIFICATIONS = ("yes", "no", "unknown")
QUALIFICATION_LABELS = {
    "yes": "Utilisateur potentiel",
    "no": "Hors cible",
    "unknown": "À qualifier",
}
CHANNELS = ("sms", "email", "phone")
CHANNEL_LABELS = {"sms": "SMS", "email": "E-mail", "phone": "Téléphone"}
CONSENT_METHODS = ("oral", "web_form", "signed_link", "sms_keyword", "import", "manual")
CONSENT_METHOD_LABELS = {
    "oral": "À l'oral, pendant un appel",
    "web_form": "Formulaire web",
    "signed_link": "Lien personnel",
    "sms_keyword": "Mot-clé SMS",
    "import": "Import",
    "manual": "Saisie manuelle",
}


class Prospect(TimestampMixin, db.Model):
    __tablename__ = "prospects"
    __table_args__ = (
        enum_check("qualification", QUALIFICATIONS, "qualification"),
        sa.Index("ix_prospects_source_created", "source_id", "created_at"),
        # PostgreSQL only: a trigram index serves search_text LIKE '%...%' (3 characters or
        # more) without reading every row (bench/search_bench.py).
        sa.Index(
            "ix_prospects_search_text_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(sa.String(120), default="")
    last_name: Mapped[str] = mapped_column(sa.String(120), default="")
    phone: Mapped[str | None] = mapped_column(sa.String(20), unique=True)  # E.164
    phone_raw: Mapped[str | None] = mapped_column(sa.String(80))  # kept when unparseable
    # The carrier refused SMS to this number (Twilio 30005-30007): calls only, until it changes.
    sms_blocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    email: Mapped[str | None] = mapped_column(sa.String(254), unique=True)  # lower case
    organisation: Mapped[str] = mapped_column(sa.String(200), default="")
    profile: Mapped[str] = mapped_column(sa.String(200), default="")
    notes: Mapped[str] = mapped_column(sa.Text, default="")
    source_id: Mapped[int] = mapped_column(sa.ForeignKey("sources.id"), index=True)
    qualification: Mapped[str] = mapped_column(sa.String(8), default="unknown", index=True)
    disqualification_reason: Mapped[str] = mapped_column(sa.Text, default="")
    allow_sms: Mapped[bool] = mapped_column(default=False)
    allow_email: Mapped[bool] = mapped_column(default=False)
    allow_phone: Mapped[bool] = mapped_column(default=False)
    # Lower-case, accent-free "first last organisation email": one LIKE finds any of them.
    search_text: Mapped[str] = mapped_column(sa.Text, default="")
    # The caller lease: who is calling this person, until when (see crm.services.call_queue).
    leased_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The method's "one in ten": attendees flagged as motivated users, and who later became
    # an active user of the service (crm.services.lab_day).
    motivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active_user_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Retention (CNIL: 3 years after the last contact that came from the person): an SMS
    # reply, a link answer, a consent given, a visit to a lab. Erased people keep a row with
    # no personal data, for the statistics.
    last_person_contact_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped on every change, so that a form opened earlier never overwrites silently.
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    source: Mapped[Source] = relationship()

    __mapper_args__ = {"version_id_col": version}

    @validates("phone")
    def _new_number_unblocks_sms(self, key: str, value: str | None) -> str | None:
        if value != self.phone:
            self.sms_blocked_at = None
        return value

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or "(sans nom)"

    @property
    def phone_invalid(self) -> bool:
        return self.phone is None and bool(self.phone_raw)

    @property
    def qualification_label(self) -> str:
        return QUALIFICATION_LABELS[self.qualification]

    def allows(self, channel: str) -> bool:
        return bool(getattr(self, f"allow_{channel}"))

    # Who an automated SMS or e-mail can reach, one rule in Python and in SQL (the waiting
    # list picks people in SQL, the offer job chooses the channel in Python). The send job
    # (crm.services.sending.check) spells the same rule out refusal by refusal, with reasons.
    @hybrid_property
    def can_get_sms(self) -> bool:
        return bool(self.allow_sms and self.phone and self.sms_blocked_at is None)

    @can_get_sms.inplace.expression
    @classmethod
    def _can_get_sms_expression(cls) -> sa.ColumnElement[bool]:
        return sa.and_(
            cls.allow_sms.is_(True), cls.phone.is_not(None), cls.sms_blocked_at.is_(None)
        )

    @hybrid_property
    def can_get_email(self) -> bool:
        return bool(self.allow_email and self.email)

    @can_get_email.inplace.expression
    @classmethod
    def _can_get_email_expression(cls) -> sa.ColumnElement[bool]:
        return sa.and_(cls.allow_email.is_(True), cls.email.is_not(None))


# The trigram operators come from the pg_trgm extension (trusted: the database owner may create
# it). The migration adding the index creates it first; this covers create_all (tests, bench).
sa.event.listen(
    Prospect.__table__,
    "before_create",
    sa.DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"),
)


class Consent(db.Model):
    """One row per change of a contact permission: the proof of who allowed what, and how."""

    __tablename__ = "consents"
    __table_args__ = (
        enum_check("channel", CHANNELS, "channel"),
        enum_check("method", CONSENT_METHODS, "method"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    prospect_id: Mapped[int] = mapped_column(
        sa.ForeignKey("prospects.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(sa.String(8))
    granted: Mapped[bool] = mapped_column()
    from_person: Mapped[bool] = mapped_column(default=False)
    method: Mapped[str] = mapped_column(sa.String(16))
    basis: Mapped[str] = mapped_column(sa.Text, default="")
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    recorded_by = relationship("User")
