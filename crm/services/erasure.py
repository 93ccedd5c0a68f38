"""Erasing one person (RGPD art. 17), on request or when the retention period is over.

Personal data is removed or replaced in every table that holds it; what is left is anonymous
and keeps the statistics true: the prospect row (named "Personne effacée", qualification and
source kept), its registrations and their statuses, the events' kinds, dates and statuses, the
messages' channel and status. The phone and e-mail go to the suppression list as keyed hashes
(crm.services.privacy), so that an import does not bring the person back.

Table by table:
- prospects: names → "Personne effacée"; phone, phone_raw, e-mail → NULL; organisation,
  profile, notes, disqualification reason, search text emptied; permissions off; erased_at.
- registrations: kept; those to a lab still to come are cancelled (the place is freed).
- followups: open ones cancelled. place_offers: through the cancellation above.
- messages: body, subject, HTML, unsubscribe header, error and to_address replaced.
- inbound_messages: body, from_number, from_e164, params scrubbed (unknown senders too).
- calls: notes emptied. call_tasks: note emptied, open tasks cancelled.
- consents: `basis` emptied (the rows stay: channel, granted, method, date).
- events: `reason` emptied and `data` reduced to ids, counts and codes.
- import_rejections: rows whose raw text holds the phone, the e-mail or the full name deleted.
- suppressions: one row per phone / e-mail. audit_entries: who erased, when, counts only.
Everything changes the session only; the caller commits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers
import sqlalchemy as sa

from crm.extensions import db
from crm.models import (
    Call,
    CallTask,
    Consent,
    Event,
    FollowUp,
    ImportRejection,
    InboundMessage,
    Lab,
    Message,
    PlaceOffer,
    Prospect,
    Registration,
    User,
)
from crm.services import audit, followups, registrations
from crm.services.normalise import fold
from crm.services.permissions import managers_only
from crm.services.privacy import ERASED_NAME, suppress
from crm.timeutil import utcnow

ERASED_REASON = "Personne effacée à sa demande."
ERASED_BODY = "(message effacé)"
ERASED_ADDRESS = "effacé"
# Event data keys whose text values are codes (statuses, channels...), never a person's words.
CODE_KEYS = frozenset(
    {"channel", "outcome", "method", "sequence", "understood", "status", "from", "to", "kind"}
)
LIST_KEYS = frozenset({"intents", "filled", "changed"})  # lists of field or intent names
# Registrations the person could still take part in: cancelled to free the place.
ACTIVE_STATUSES = registrations.PENDING | {"confirmed"}


@dataclass
class ErasureResult:
    prospect_id: int
    already: bool = False
    counts: dict[str, int] = field(default_factory=dict)


@managers_only
def erase(
    prospect: Prospect,
    actor: User | None,
    *,
    action: str = "prospect.erased",
    actor_label: str | None = None,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
    suppress_contacts: bool = True,
) -> ErasureResult:
    """Remove the person's data everywhere and audit it; a second call does nothing.
    `suppress_contacts` puts the phone and e-mail on the suppression list: for an erasure the
    person asked for, not for the retention job (they may be invited again one day)."""
    if prospect.erased_at is not None:
        return ErasureResult(prospect.id, already=True)
    now = now or utcnow()
    phone, email = prospect.phone, prospect.email
    names = (prospect.first_name, prospect.last_name)
    if suppress_contacts:
        suppress("phone", phone, ERASED_REASON)
        suppress("email", email, ERASED_REASON)
    counts = {"inscriptions_annulees": _cancel_registrations(prospect, actor, now)}
    db.session.flush()
    reg_ids = list(
        db.session.scalars(
            sa.select(Registration.id).where(Registration.prospect_id == prospect.id)
        )
    )
    counts["relances_annulees"] = _cancel_followups(reg_ids)
    counts["appels"] = _scrub_calls(prospect.id, now)
    counts["messages"] = _scrub_messages(prospect.id, phone, email)
    inbound_ids = _scrub_inbound(prospect.id, phone)
    counts["sms_recus"] = len(inbound_ids)
    counts["autorisations"] = _scrub_consents(prospect.id)
    counts["evenements"] = _scrub_events(prospect.id, reg_ids, inbound_ids)
    counts["lignes_importees"] = _delete_rejections(phone, email, names)
    db.session.expire_all()  # the statements above bypassed the identity map
    _anonymise(prospect, now)
    audit.record(
        action,
        "prospect",
        prospect.id,
        {**(detail or {}), **counts},
        actor=actor,
        actor_label=actor_label,
    )
    db.session.flush()
    return ErasureResult(prospect.id, counts=counts)


def _cancel_registrations(prospect: Prospect, actor: User | None, now: datetime) -> int:
    """Registrations to labs not over yet: cancelled through the service (follow-ups
    stopped, a waiting-list place offered to the next person)."""
    upcoming = db.session.scalars(
        sa.select(Registration)
        .join(Lab, Lab.id == Registration.lab_id)
        .where(
            Registration.prospect_id == prospect.id,
            Registration.status.in_(ACTIVE_STATUSES),
            Lab.ends_at > now,
        )
    ).all()
    for registration in upcoming:
        registrations.change_status(registration, "cancelled", actor, ERASED_REASON)
    return len(upcoming)


def _cancel_followups(reg_ids: list[int]) -> int:
    if not reg_ids:
        return 0
    cancelled = followups.cancel_open_where(ERASED_REASON, FollowUp.registration_id.in_(reg_ids))
    # Reasons may quote a provider's error text, which can hold the number.
    _update(FollowUp, FollowUp.registration_id.in_(reg_ids), reason=ERASED_REASON)
    _update(PlaceOffer, PlaceOffer.registration_id.in_(reg_ids), reason="")
    return cancelled


def _scrub_calls(prospect_id: int, now: datetime) -> int:
    done = _update(Call, Call.prospect_id == prospect_id, notes="")
    _update(CallTask, CallTask.prospect_id == prospect_id, note="")
    _update(
        CallTask,
        sa.and_(CallTask.prospect_id == prospect_id, CallTask.status == "open"),
        status="cancelled",
        closed_at=now,
    )
    return done


def _scrub_messages(prospect_id: int, phone: str | None, email: str | None) -> int:
    sent_to = [value for value in (phone, email) if value]
    condition = Message.prospect_id == prospect_id
    if sent_to:
        condition = sa.or_(condition, Message.to_address.in_(sent_to))
    return _update(
        Message,
        condition,
        body=ERASED_BODY,
        subject="",
        html=None,
        list_unsubscribe=None,
        error="",
        to_address=ERASED_ADDRESS,
    )


def _scrub_inbound(prospect_id: int, phone: str | None) -> list[int]:
    """Every SMS from the person, matched to them or not (an unknown sender earlier)."""
    condition = InboundMessage.prospect_id == prospect_id
    if phone:
        condition = sa.or_(condition, InboundMessage.from_e164 == phone)
    ids = list(db.session.scalars(sa.select(InboundMessage.id).where(condition)))
    if ids:
        _update(
            InboundMessage,
            InboundMessage.id.in_(ids),
            body="",
            from_number="",
            from_e164=None,
            params={},
        )
    return ids


def _scrub_consents(prospect_id: int) -> int:
    return _update(Consent, Consent.prospect_id == prospect_id, basis="")


def _scrub_events(prospect_id: int, reg_ids: list[int], inbound_ids: list[int]) -> int:
    """Events are append-only through the ORM (crm.models.event); erasure is the one
    sanctioned exception, required by law, and goes through a Core UPDATE on the table."""
    table = Event.__table__
    condition = table.c.prospect_id == prospect_id
    if reg_ids:
        condition = sa.or_(condition, table.c.registration_id.in_(reg_ids))
    rows = list(db.session.execute(sa.select(table.c.id, table.c.data).where(condition)))
    if inbound_ids:  # replies from an unknown number carry the text with no prospect id
        wanted = set(inbound_ids)
        orphans = sa.select(table.c.id, table.c.data).where(
            table.c.kind == "reply.received", table.c.prospect_id.is_(None)
        )
        rows += [
            r for r in db.session.execute(orphans) if (r.data or {}).get("inbound_id") in wanted
        ]
    if not rows:
        return 0
    statement = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("b_id"))
        .values(reason="", data=sa.bindparam("b_data"))
    )
    db.session.execute(statement, [{"b_id": r.id, "b_data": scrub_data(r.data)} for r in rows])
    return len(rows)


def scrub_data(data: dict[str, Any] | None) -> dict[str, Any]:
    """Keep ids, counts, flags and codes; drop any free text (an SMS body, a source file...)."""
    kept: dict[str, Any] = {}
    for key, value in (data or {}).items():
        if value is None or isinstance(value, bool | int | float):
            kept[key] = value
        elif isinstance(value, str) and key in CODE_KEYS:
            kept[key] = value[:40]
        elif isinstance(value, list) and key in LIST_KEYS:
            kept[key] = [v for v in value if isinstance(v, str) and len(v) <= 40]
    return kept


def _delete_rejections(phone: str | None, email: str | None, names: tuple[str, str]) -> int:
    """Rejected import rows are raw text: matched on the phone's digits (any format), the
    e-mail, or the first and last name together."""
    digits = _national_digits(phone)
    address = (email or "").lower()
    words = [re.compile(rf"\b{re.escape(fold(n))}\b") for n in names if fold(n)]
    doomed = []
    query = sa.select(ImportRejection.id, ImportRejection.raw).execution_options(yield_per=1000)
    for row_id, raw in db.session.execute(query):
        text = raw or ""
        if (
            (digits and digits in re.sub(r"\D", "", text))
            or (address and address in text.lower())
            or (len(words) == 2 and all(w.search(fold(text)) for w in words))
        ):
            doomed.append(row_id)
    for start in range(0, len(doomed), 1000):
        chunk = doomed[start : start + 1000]
        db.session.execute(sa.delete(ImportRejection).where(ImportRejection.id.in_(chunk)))
    return len(doomed)


def _national_digits(phone: str | None) -> str:
    """612345678 for +33612345678: found in 06 12 34 56 78 and in +33 6 12 34 56 78."""
    if not phone:
        return ""
    return phonenumbers.national_significant_number(phonenumbers.parse(phone, None))


def _anonymise(prospect: Prospect, now: datetime) -> None:
    prospect.first_name, prospect.last_name = ERASED_NAME, ""
    prospect.phone = prospect.phone_raw = prospect.email = None
    prospect.organisation = prospect.profile = prospect.notes = ""
    prospect.disqualification_reason = prospect.search_text = ""
    prospect.allow_sms = prospect.allow_email = prospect.allow_phone = False
    prospect.sms_blocked_at = prospect.leased_until = prospect.leased_by_id = None
    prospect.last_person_contact_at = None
    prospect.erased_at = now


def _update(model: type[Any], condition: sa.ColumnElement[bool], **values: Any) -> int:
    result = db.session.execute(
        sa.update(model).where(condition).values(**values),
        execution_options={"synchronize_session": False},
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
