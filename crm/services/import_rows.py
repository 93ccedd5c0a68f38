"""Writing one batch of imported rows: a few bulk statements per batch, never one per row.

Per batch: one query finds the people already known by the batch's phones and e-mails (locked
on PostgreSQL until the batch commits), then bulk inserts (new people, events, permissions,
registrations, rejected rows) and grouped updates (merged people).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from crm.extensions import db
from crm.models import Consent, Event, ImportRejection, Prospect
from crm.services import registrations
from crm.services.bulk_sql import bulk_insert, one_of
from crm.services.csv_reading import Record
from crm.services.import_rules import (
    STATE_FIELDS,
    BatchPlan,
    Outcome,
    Person,
    RowRejected,
    clean_row,
)
from crm.services.privacy import REIMPORT_REFUSED, suppressed_values

_KNOWN_COLUMNS = (*STATE_FIELDS, "allow_sms", "allow_email", "allow_phone")


@dataclass
class ImportContext:
    """What every batch of one import needs to know."""

    import_id: int
    filename: str
    mapping: list[str]
    source_id: int
    source_name: str
    lab_id: int | None = None
    channels: list[str] = field(default_factory=list)
    basis: str = ""
    actor_id: int | None = None

    @property
    def reason(self) -> str:
        return f"Import n° {self.import_id} ({self.filename})"


@dataclass
class BatchCounts:
    created: int = 0
    merged: int = 0
    rejected: int = 0


def process_batch(ctx: ImportContext, records: list[Record]) -> BatchCounts:
    """Import these records; the caller commits (one transaction per batch)."""
    counts = BatchCounts()
    rejections: list[dict[str, Any]] = []
    accepted = []
    for record in records:
        try:
            accepted.append((record, clean_row(record.fields, ctx.mapping)))
        except RowRejected as exc:
            rejections.append(_rejection(ctx, record, str(exc)))
    accepted = _without_erased(ctx, accepted, rejections)
    plan = BatchPlan(_load_known([cleaned for _, cleaned in accepted]))
    outcomes = [(record, plan.add(cleaned)) for record, cleaned in accepted]
    touched = list({id(o.person): o.person for _, o in outcomes}.values())
    grants = _grants(ctx, touched)
    _insert_people(ctx, plan.new_people())
    _update_people(plan.changed_people())
    _write_events(ctx, outcomes)
    _write_consents(ctx, grants)
    if ctx.lab_id is not None:
        _register(ctx, [outcome.person.id for _, outcome in outcomes])  # type: ignore[misc]
    if rejections:
        bulk_insert(ImportRejection.__table__, rejections)
    counts.created = sum(1 for _, o in outcomes if o.created)
    counts.merged = len(outcomes) - counts.created
    counts.rejected = len(rejections)
    return counts


def _rejection(ctx: ImportContext, record: Record, reason: str) -> dict[str, Any]:
    return {
        "import_id": ctx.import_id,
        "line_number": record.line_number,
        "raw": record.raw,
        "reason": reason,
    }


def _without_erased(
    ctx: ImportContext, accepted: list[Any], rejections: list[dict[str, Any]]
) -> list[Any]:
    """Rows of people erased at their request (suppression list, one query per batch) are
    rejected, without their text: keeping it would bring the person back in another table."""
    erased = suppressed_values([c.phone for _, c in accepted], [c.email for _, c in accepted])
    if not erased:
        return accepted
    kept = []
    for record, cleaned in accepted:
        if cleaned.phone in erased or cleaned.email in erased:
            row = _rejection(ctx, record, REIMPORT_REFUSED)
            row["raw"] = ""
            rejections.append(row)
        else:
            kept.append((record, cleaned))
    return kept


def _load_known(rows: list[Any]) -> list[dict[str, Any]]:
    """The people who already own one of these phones or e-mails (one query)."""
    phones = sorted({r.phone for r in rows if r.phone})
    emails = sorted({r.email for r in rows if r.email})
    if not phones and not emails:
        return []
    columns = [Prospect.id, *(getattr(Prospect, name) for name in _KNOWN_COLUMNS)]
    query = (
        sa.select(*columns)
        .where(sa.or_(one_of(Prospect.phone, phones), one_of(Prospect.email, emails)))
        .order_by(Prospect.id)
        .with_for_update()
    )
    return [dict(row._mapping) for row in db.session.execute(query)]


def _grants(ctx: ImportContext, people: list[Person]) -> list[tuple[Person, str]]:
    """(person, channel) to allow, among the people of the file: every new person; a known
    person only if nobody ever recorded a decision for that channel (an import never
    overrides a refusal)."""
    if not ctx.channels:
        return []
    known = [p for p in people if not p.is_new]
    decided: set[tuple[int, str]] = set()
    if known:
        query = sa.select(Consent.prospect_id, Consent.channel).where(
            one_of(Consent.prospect_id, [p.id for p in known]), Consent.channel.in_(ctx.channels)
        )
        decided = {(row[0], row[1]) for row in db.session.execute(query)}
    grants = []
    for person in people:
        for channel in ctx.channels:
            if person.is_new:
                person.values[f"allow_{channel}"] = True
                grants.append((person, channel))
            elif not person.allows.get(channel) and (person.id, channel) not in decided:
                person.values[f"allow_{channel}"] = True
                person.changed.add(f"allow_{channel}")
                grants.append((person, channel))
    return grants


def _insert_people(ctx: ImportContext, people: list[Person]) -> None:
    if not people:
        return
    rows = []
    for person in people:
        row = person.row()
        row["source_id"] = ctx.source_id
        for channel in ("sms", "email", "phone"):
            row[f"allow_{channel}"] = bool(person.values.get(f"allow_{channel}"))
        rows.append(row)
    bulk_insert(Prospect.__table__, rows)
    # Read the ids back by the unique phones and e-mails (faster than RETURNING on executemany).
    phones = {p.values["phone"]: p for p in people if p.values.get("phone")}
    emails = {p.values["email"]: p for p in people if p.values.get("email")}
    query = sa.select(Prospect.id, Prospect.phone, Prospect.email).where(
        sa.or_(one_of(Prospect.phone, list(phones)), one_of(Prospect.email, list(emails)))
    )
    for new_id, phone, email in db.session.execute(query):
        person = phones.get(phone) or emails.get(email)
        if person is not None:
            person.id = new_id
    if any(person.id is None for person in people):
        raise RuntimeError("an imported prospect was not found after its insertion")


def _update_people(people: list[Person]) -> None:
    """One executemany per set of changed columns; the version moves on like an ORM save."""
    table = Prospect.__table__
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for person in people:
        row = person.row()
        groups[tuple(sorted(row))].append(
            {"b_id": person.id, **{f"b_{k}": v for k, v in row.items()}}
        )
    for names, params in groups.items():
        values: dict[str, Any] = {name: sa.bindparam(f"b_{name}") for name in names}
        values["version"] = table.c.version + 1
        query = sa.update(table).where(table.c.id == sa.bindparam("b_id")).values(values)
        db.session.execute(query, params)


def _write_events(ctx: ImportContext, outcomes: list[tuple[Record, Outcome]]) -> None:
    """The people's timelines say which import (and which line) brought or completed them."""
    rows = []
    for record, outcome in outcomes:
        data: dict[str, Any] = {"import_id": ctx.import_id, "line": record.line_number}
        if outcome.created:
            data["source"] = ctx.source_name
        else:
            data["filled"] = outcome.filled
        rows.append(
            {
                "kind": "prospect.created" if outcome.created else "prospect.merged",
                "prospect_id": outcome.person.id,
                "actor_id": ctx.actor_id,
                "reason": ctx.reason,
                "data": data,
            }
        )
    if rows:
        bulk_insert(Event.__table__, rows)


def _write_consents(ctx: ImportContext, grants: list[tuple[Person, str]]) -> None:
    rows = [
        {
            "prospect_id": person.id,
            "channel": channel,
            "granted": True,
            "from_person": False,
            "method": "import",
            "basis": ctx.basis,
            "recorded_by_id": ctx.actor_id,
        }
        for person, channel in grants
    ]
    if rows:
        bulk_insert(Consent.__table__, rows)


def _register(ctx: ImportContext, prospect_ids: list[int]) -> None:
    registrations.register_many(
        ctx.lab_id, prospect_ids, ctx.actor_id, ctx.reason, {"import_id": ctx.import_id}
    )
