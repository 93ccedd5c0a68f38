"""Reading and editing prospect records: the filtered list page, the edit, related rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy.orm import joinedload

from crm.extensions import db
from crm.models import Consent, Event, Lab, Prospect, Registration, Source, User
from crm.models.prospect import QUALIFICATIONS
from crm.models.registration import REGISTRATION_STATUSES
from crm.services.privacy import SAVE_REFUSED, is_suppressed
from crm.services.prospects import (
    ProspectError,
    ProspectInput,
    build_search_text,
    clean,
    search_query,
)

# Counting every match of a broad search costs a full scan: stop counting past this many.
COUNT_CAP = 10_000
EDIT_FIELDS = (
    "first_name",
    "last_name",
    "phone",
    "phone_raw",
    "email",
    "organisation",
    "profile",
    "notes",
    "source_id",
)


class ContactTaken(ProspectError):
    """The phone or e-mail belongs to another prospect; `field` is "phone" or "email"."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _int_or_none(value: str | None) -> int | None:
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if number > 0 else None


@dataclass(frozen=True)
class ProspectFilters:
    """The search box and the filters of the prospect list, read leniently from the URL."""

    q: str = ""
    source: int | None = None
    qualification: str | None = None
    lab: int | None = None
    status: str | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> ProspectFilters:
        qualification = args.get("qualification") or None
        status = args.get("statut") or None
        return cls(
            q=(args.get("q") or "").strip()[:200],
            source=_int_or_none(args.get("source")),
            qualification=qualification if qualification in QUALIFICATIONS else None,
            lab=_int_or_none(args.get("lab")),
            status=status if status in REGISTRATION_STATUSES else None,
        )

    def as_args(self) -> dict[str, Any]:
        """The URL parameters that reproduce these filters (for pagination links)."""
        args = {
            "q": self.q,
            "source": self.source,
            "qualification": self.qualification,
            "lab": self.lab,
            "statut": self.status,
        }
        return {k: v for k, v in args.items() if v}

    @property
    def active(self) -> bool:
        return bool(self.as_args())

    def query(self) -> sa.Select[tuple[Prospect]]:
        return search_query(self.q, self.source, self.qualification, self.lab, self.status)


@dataclass
class ProspectPage:
    """One page of prospects; `total_capped` means there are more than `total` matches."""

    pagination: Pagination
    total: int
    total_capped: bool

    @property
    def items(self) -> list[Prospect]:
        return list(self.pagination.items)


def capped_count(query: sa.Select[Any], cap: int) -> int:
    """Count the rows of `query`, stopping at cap + 1 (a broad search need not scan it all)."""
    limited = query.with_only_columns(Prospect.id).order_by(None).limit(cap + 1).subquery()
    return db.session.scalar(sa.select(sa.func.count()).select_from(limited)) or 0


def prospect_page(
    filters: ProspectFilters, page: int, per_page: int, count_cap: int | None = COUNT_CAP
) -> ProspectPage:
    """The list view's page: items by db.paginate, then the total, counted only when needed.

    A page that is not full is the last one: the total follows without a count query (a rare
    search then costs one scan, not two). Otherwise the count stops past `count_cap` rows.
    """
    query = filters.query().options(joinedload(Prospect.source))
    if count_cap is None:
        pagination = db.paginate(query, page=page, per_page=per_page, error_out=False)
        return ProspectPage(pagination, pagination.total or 0, False)
    pagination = db.paginate(query, page=page, per_page=per_page, error_out=False, count=False)
    shown = len(pagination.items)
    if 0 < shown < per_page or (shown == 0 and pagination.page == 1):
        total = (pagination.page - 1) * per_page + shown
    else:
        total = capped_count(filters.query(), count_cap)
    capped = total > count_cap
    pagination.total = min(total, count_cap)
    return ProspectPage(pagination, pagination.total, capped)


def update_prospect(
    prospect: Prospect, data: ProspectInput, source: Source, actor: User | None
) -> list[str]:
    """Replace the prospect's fields with re-normalised values; the changed field names."""
    cleaned = clean(data).as_dict()
    for name in ("phone", "email"):
        # A contact typed in by hand may belong to someone erased at their request.
        new = cleaned[name] if cleaned[name] != getattr(prospect, name) else None
        if new is not None and is_suppressed(*((new, None) if name == "phone" else (None, new))):
            raise ContactTaken(SAVE_REFUSED, name)
    for name, label in (
        ("phone", "Ce numéro de téléphone est déjà celui de"),
        ("email", "Cette adresse e-mail est déjà celle de"),
    ):
        value = cleaned[name]
        if value is None:
            continue
        owner = db.session.scalar(
            sa.select(Prospect).where(getattr(Prospect, name) == value, Prospect.id != prospect.id)
        )
        if owner is not None:
            raise ContactTaken(
                f"{label} {owner.full_name} (fiche n° {owner.id}) : "
                "une même personne n'a qu'une fiche.",
                name,
            )
    values = {**cleaned, "source_id": source.id}
    changed = [name for name in EDIT_FIELDS if getattr(prospect, name) != values[name]]
    for name in changed:
        setattr(prospect, name, values[name])
    if changed:
        prospect.search_text = build_search_text(cleaned)
        db.session.flush()
        db.session.add(
            Event(
                kind="prospect.updated",
                prospect_id=prospect.id,
                actor_id=actor.id if actor else None,
                data={"changed": changed},
            )
        )
    return changed


def registrations_of(prospect: Prospect) -> list[Registration]:
    query = (
        sa.select(Registration)
        .join(Lab, Lab.id == Registration.lab_id)
        .where(Registration.prospect_id == prospect.id)
        .options(joinedload(Registration.lab))
        .order_by(Lab.starts_at.desc())
    )
    return list(db.session.scalars(query))


def labs_open_for(prospect: Prospect, include_registered: bool = False) -> list[Lab]:
    """Labs the prospect can be registered to: not done (and not already registered)."""
    query = sa.select(Lab).where(Lab.status != "done").order_by(Lab.starts_at)
    if not include_registered:
        registered = sa.select(Registration.lab_id).where(Registration.prospect_id == prospect.id)
        query = query.where(Lab.id.not_in(registered))
    return list(db.session.scalars(query))


def consents_of(prospect: Prospect) -> list[Consent]:
    query = (
        sa.select(Consent)
        .where(Consent.prospect_id == prospect.id)
        .options(joinedload(Consent.recorded_by))
        .order_by(Consent.recorded_at.desc(), Consent.id.desc())
    )
    return list(db.session.scalars(query))
