"""Prospects: creation, the merge rule, contact permissions and the search query."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa

from crm.extensions import db
from crm.models import Consent, Event, Prospect, Registration, Source, User
from crm.models.prospect import CHANNELS
from crm.services.normalise import (
    fold,
    normalise_email,
    normalise_phone,
    search_key,
)
from crm.services.privacy import SAVE_REFUSED, is_suppressed
from crm.timeutil import utcnow

# Fields a merge may fill when the existing value is empty; existing values always win.
MERGE_FIELDS = ("first_name", "last_name", "phone", "email", "organisation", "profile")


class ProspectError(ValueError):
    """Bad prospect data; the message is in French for the interface."""


@dataclass
class ProspectInput:
    """One person as typed in a form or read from an import row (raw text)."""

    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    email: str = ""
    organisation: str = ""
    profile: str = ""
    notes: str = ""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ProspectInput:
        names = {f.name for f in fields(cls)}
        return cls(**{k: str(v or "").strip() for k, v in values.items() if k in names})


@dataclass
class CleanProspect:
    """Normalised values, ready to store; `phone_raw` keeps an unparseable phone."""

    first_name: str
    last_name: str
    phone: str | None
    phone_raw: str | None
    email: str | None
    organisation: str
    profile: str
    notes: str

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def clean(data: ProspectInput, *, contact_required: bool = True) -> CleanProspect:
    """Normalise a prospect; raise ProspectError when the person cannot be contacted at all
    (unless `contact_required` is False and nothing was typed: a walk-in on the lab day)."""
    phone = normalise_phone(data.phone)
    email = normalise_email(data.email)
    if data.email and email is None and phone is None:
        raise ProspectError("Adresse e-mail invalide et aucun téléphone valide.")
    if phone is None and email is None and (contact_required or data.phone):
        if data.phone:
            raise ProspectError("Numéro de téléphone illisible et aucune adresse e-mail.")
        raise ProspectError("Aucun moyen de contact : ni téléphone ni adresse e-mail.")
    return CleanProspect(
        first_name=data.first_name[:120],
        last_name=data.last_name[:120],
        phone=phone,
        phone_raw=data.phone[:80] if data.phone and phone is None else None,
        email=email,
        organisation=data.organisation[:200],
        profile=data.profile[:200],
        notes=data.notes,
    )


def merge_updates(existing: Mapping[str, Any], incoming: Mapping[str, Any]) -> dict[str, Any]:
    """The merge rule: fill the existing person's empty fields, never overwrite a value."""
    updates = {
        name: incoming[name]
        for name in MERGE_FIELDS
        if not existing.get(name) and incoming.get(name)
    }
    if incoming.get("notes") and incoming["notes"] not in (existing.get("notes") or ""):
        previous = existing.get("notes") or ""
        updates["notes"] = f"{previous}\n{incoming['notes']}".strip()
    return updates


def build_search_text(p: Mapping[str, Any]) -> str:
    """Name, organisation, e-mail and the phone's digits in national form (0612345678)."""
    return search_key(
        p.get("first_name"),
        p.get("last_name"),
        p.get("organisation"),
        p.get("email"),
        _phone_digits(p.get("phone")),
    )


def _phone_digits(e164: str | None) -> str:
    if not e164:
        return ""
    return "0" + e164[3:] if e164.startswith("+33") else e164.lstrip("+")


def find_existing(phone: str | None, email: str | None) -> Prospect | None:
    """Same normalised phone or same e-mail (case-insensitive) means the same person."""
    if phone:
        found = db.session.scalar(sa.select(Prospect).where(Prospect.phone == phone))
        if found is not None:
            return found
    if email:
        return db.session.scalar(sa.select(Prospect).where(Prospect.email == email))
    return None


def save(
    data: ProspectInput,
    source: Source,
    actor: User | None,
    reason: str = "",
    *,
    contact_required: bool = True,
) -> tuple[Prospect, bool]:
    """Create the prospect or merge it into the same person: (prospect, created)."""
    cleaned = clean(data, contact_required=contact_required)
    if is_suppressed(cleaned.phone, cleaned.email):  # erased at their request: never again
        raise ProspectError(SAVE_REFUSED)
    existing = find_existing(cleaned.phone, cleaned.email)
    if existing is None:
        prospect = Prospect(source=source, **cleaned.as_dict())
        prospect.search_text = build_search_text(cleaned.as_dict())
        db.session.add(prospect)
        db.session.flush()
        _event("prospect.created", prospect, actor, reason, {"source": source.name})
        return prospect, True
    current = {name: getattr(existing, name) for name in (*MERGE_FIELDS, "notes")}
    updates = _without_taken_contacts(merge_updates(current, cleaned.as_dict()), existing.id)
    for name, value in updates.items():
        setattr(existing, name, value)
    if updates:
        existing.search_text = build_search_text({**current, **updates})
    _event("prospect.merged", existing, actor, reason, {"filled": sorted(updates)})
    return existing, False


def _without_taken_contacts(updates: dict[str, Any], prospect_id: int) -> dict[str, Any]:
    """Never fill a phone or e-mail that already belongs to someone else."""
    for name in ("phone", "email"):
        value = updates.get(name)
        if value is None:
            continue
        owner = db.session.scalar(sa.select(Prospect.id).where(getattr(Prospect, name) == value))
        if owner is not None and owner != prospect_id:
            del updates[name]
    return updates


def set_permission(
    prospect: Prospect,
    channel: str,
    granted: bool,
    method: str,
    actor: User | None,
    from_person: bool = False,
    basis: str = "",
) -> Consent | None:
    """Change one contact permission and write its ledger row; no row when nothing changes."""
    if channel not in CHANNELS:
        raise ProspectError(f"Canal inconnu : {channel}.")
    if from_person and granted:  # a contact initiated by the person: retention restarts
        prospect.last_person_contact_at = utcnow()
    if prospect.allows(channel) == granted:
        return None
    setattr(prospect, f"allow_{channel}", granted)
    _event(
        "consent.changed",
        prospect,
        actor,
        basis,
        {"channel": channel, "granted": granted, "method": method, "from_person": from_person},
    )
    consent = Consent(
        prospect_id=prospect.id,
        channel=channel,
        granted=granted,
        method=method,
        from_person=from_person,
        basis=basis,
        recorded_by_id=actor.id if actor else None,
    )
    db.session.add(consent)
    return consent


def qualify(prospect: Prospect, qualification: str, reason: str, actor: User | None) -> None:
    if qualification == "no" and not reason.strip():
        raise ProspectError("Indiquez pourquoi cette personne n'est pas un utilisateur potentiel.")
    previous = prospect.qualification
    prospect.qualification = qualification
    prospect.disqualification_reason = reason.strip() if qualification == "no" else ""
    if previous != qualification:
        _event(
            "prospect.qualified", prospect, actor, reason, {"from": previous, "to": qualification}
        )


def search_query(
    text: str = "",
    source_id: int | None = None,
    qualification: str | None = None,
    lab_id: int | None = None,
    registration_status: str | None = None,
) -> sa.Select[tuple[Prospect]]:
    """Prospects matching a name, phone (any format), e-mail or organisation, and filters."""
    query = sa.select(Prospect)
    text = text.replace("\x00", "").strip()  # PostgreSQL refuses NUL in text
    if text:
        phone = normalise_phone(text)
        email = normalise_email(text) if "@" in text else None
        if phone:
            query = query.where(Prospect.phone == phone)
        elif email:
            query = query.where(Prospect.email == email)  # the unique index, not a scan
        else:
            digits = _national_digits(text)
            needle = digits if digits.isdigit() else fold(text)
            query = query.where(Prospect.search_text.contains(needle, autoescape=True))
    if source_id:
        query = query.where(Prospect.source_id == source_id)
    if qualification:
        query = query.where(Prospect.qualification == qualification)
    if lab_id or registration_status:
        registrations = sa.select(Registration.prospect_id)
        if lab_id:
            registrations = registrations.where(Registration.lab_id == lab_id)
        if registration_status:
            registrations = registrations.where(Registration.status == registration_status)
        query = query.where(Prospect.id.in_(registrations))
    return query.order_by(Prospect.id.desc())


def _national_digits(text: str) -> str:
    """'+33 6 12' or '0033 6 12' typed in part: the national digits '0612' of search_text."""
    digits = re.sub(r"[\s.\-()]", "", text)
    for prefix in ("+33", "0033"):
        if digits.startswith(prefix) and digits[len(prefix) :].isdigit():
            return "0" + digits[len(prefix) :].removeprefix("0")
    return digits


def _event(
    kind: str, prospect: Prospect, actor: User | None, reason: str, data: dict[str, Any]
) -> None:
    db.session.add(
        Event(
            kind=kind,
            prospect_id=prospect.id,
            actor_id=actor.id if actor else None,
            reason=reason,
            data=data,
        )
    )
