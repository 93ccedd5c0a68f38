"""Everything we hold about one person (RGPD art. 15 and 20), as JSON or as a ZIP of CSVs.

Every column of every row linked to the person, table by table: the prospect row,
registrations (with the lab's title), calls, call tasks, messages sent (bodies included),
SMS received, the consent ledger, events, follow-ups and waiting-list offers. The CSVs are
those of crm.services.exports (semicolons, UTF-8 with BOM, formulas neutralised).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from crm.extensions import db
from crm.models import (
    Call,
    CallTask,
    Consent,
    Event,
    FollowUp,
    InboundMessage,
    Lab,
    Message,
    PlaceOffer,
    Prospect,
    Registration,
)
from crm.services.exports import csv_chunks
from crm.timeutil import utcnow

FORMAT = "open-lab-crm/personne/1"


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):  # date, time
        return value.isoformat()
    return value


def _rows(model: type[Any], condition: sa.ColumnElement[bool]) -> list[dict[str, Any]]:
    table = model.__table__
    query = sa.select(table).where(condition).order_by(table.c.id)
    return [dict(row._mapping) for row in db.session.execute(query)]


def collect(prospect: Prospect) -> dict[str, list[dict[str, Any]]]:
    """Raw rows (Python values) per table, keyed by the French name used in the exports."""
    pid = prospect.id
    reg_ids = list(
        db.session.scalars(sa.select(Registration.id).where(Registration.prospect_id == pid))
    )
    titles = dict(
        db.session.execute(
            sa.select(Registration.id, Lab.title)
            .join(Lab, Lab.id == Registration.lab_id)
            .where(Registration.prospect_id == pid)
        ).all()
    )
    inbound = InboundMessage.prospect_id == pid
    if prospect.phone:
        inbound = sa.or_(inbound, InboundMessage.from_e164 == prospect.phone)
    events = Event.prospect_id == pid
    if reg_ids:
        events = sa.or_(events, Event.registration_id.in_(reg_ids))
    registrations = _rows(Registration, Registration.prospect_id == pid)
    for row in registrations:
        row["open_lab"] = titles.get(row["id"], "")
    return {
        "personne": _rows(Prospect, Prospect.id == pid),
        "inscriptions": registrations,
        "appels": _rows(Call, Call.prospect_id == pid),
        "taches_appel": _rows(CallTask, CallTask.prospect_id == pid),
        "messages_envoyes": _rows(Message, Message.prospect_id == pid),
        "sms_recus": _rows(InboundMessage, inbound),
        "registre_autorisations": _rows(Consent, Consent.prospect_id == pid),
        "evenements": _rows(Event, events),
        "relances": _rows(FollowUp, FollowUp.registration_id.in_(reg_ids)),
        "propositions_de_place": _rows(PlaceOffer, PlaceOffer.registration_id.in_(reg_ids)),
    }


def as_json(prospect: Prospect) -> str:
    """One document; `personne` is an object, every other table a list."""
    tables = collect(prospect)
    document: dict[str, Any] = {"format": FORMAT, "genere_le": utcnow().isoformat()}
    for name, rows in tables.items():
        clean = [{k: _value(v) for k, v in row.items()} for row in rows]
        document[name] = clean[0] if name == "personne" else clean
    return json.dumps(document, ensure_ascii=False, indent=2)


def _csv(rows: Sequence[dict[str, Any]], header: Sequence[str]) -> bytes:
    def cells(row: dict[str, Any]) -> list[Any]:
        return [
            json.dumps(row[name], ensure_ascii=False)
            if isinstance(row[name], dict | list)
            else row[name]
            for name in header
        ]

    return "".join(csv_chunks(header, (cells(r) for r in rows))).encode("utf-8")


def as_zip(prospect: Prospect) -> bytes:
    """One CSV per table (a header even when empty); times in Paris time, as in every export."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, rows in collect(prospect).items():
            model_header = list(rows[0]) if rows else _columns(name)
            archive.writestr(f"{name}.csv", _csv(rows, model_header))
    return buffer.getvalue()


_MODELS: dict[str, type[Any]] = {
    "personne": Prospect,
    "inscriptions": Registration,
    "appels": Call,
    "taches_appel": CallTask,
    "messages_envoyes": Message,
    "sms_recus": InboundMessage,
    "registre_autorisations": Consent,
    "evenements": Event,
    "relances": FollowUp,
    "propositions_de_place": PlaceOffer,
}


def _columns(name: str) -> list[str]:
    columns = [c.name for c in _MODELS[name].__table__.columns]
    return [*columns, "open_lab"] if name == "inscriptions" else columns


def filename(prospect: Prospect, extension: str) -> str:
    return f"personne-{prospect.id}-{utcnow():%Y-%m-%d}.{extension}"
