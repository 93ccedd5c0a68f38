"""CSV exports that French Excel opens as they are, and that never run a formula.

Semicolon-separated, UTF-8 with a byte order mark, French headers, Paris times, and every
cell that a spreadsheet could read as a formula prefixed with a single quote.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import phonenumbers
import sqlalchemy as sa

from crm.extensions import db
from crm.models import Event, Lab, Prospect, Registration, Source, User
from crm.models.prospect import QUALIFICATION_LABELS
from crm.models.registration import REGISTRATION_STATUS_LABELS
from crm.services import audit
from crm.services.normalise import format_phone
from crm.services.permissions import managers_only
from crm.timeutil import to_local

BOM = "\ufeff"
DELIMITER = ";"
# A spreadsheet reads a cell starting with one of these as a formula (or may, after trimming
# a tab or a line break): OWASP "CSV injection".
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
CHUNK_ROWS = 500
# Metropolitan France and the overseas departments dialled with a leading 0 from France.
FRENCH_PLAN = frozenset({33, 262, 590, 594, 596})

LAB_EXPORT_HEADER = (
    "prénom",
    "nom",
    "téléphone",
    "e-mail",
    "structure",
    "profil",
    "source",
    "qualification",
    "motif hors cible",
    "statut",
    "inscrit le",
    "statut modifié le",
)


def neutralise(cell: str) -> str:
    """Prefix a single quote to a cell a spreadsheet would run as a formula."""
    if cell and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def cell_text(value: Any) -> str:
    """The text of one cell: Paris time for datetimes, oui/non, neutralised strings."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        local = to_local(value)
        assert local is not None
        return local.strftime("%d/%m/%Y %H:%M")
    return neutralise(str(value))


def csv_chunks(
    header: Sequence[str], rows: Iterable[Sequence[Any]], chunk_rows: int = CHUNK_ROWS
) -> Iterator[str]:
    """The CSV text in chunks of `chunk_rows` rows, the first one starting with the BOM."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=DELIMITER, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow([neutralise(h) for h in header])
    for count, row in enumerate(rows, start=1):
        writer.writerow([cell_text(value) for value in row])
        if count % chunk_rows == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def export_phone(phone: str | None, phone_raw: str | None) -> str:
    """National format for numbers of the French plan (06 12 34 56 78, 0692 12 34 56): no
    leading + for a spreadsheet to read as a formula; international form otherwise."""
    if not phone:
        return phone_raw or ""
    number = phonenumbers.parse(phone, None)
    if number.country_code in FRENCH_PLAN:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return format_phone(phone)


def lab_registration_rows(lab_id: int, status: str | None = None) -> Iterator[tuple[Any, ...]]:
    """One row per registration of the lab, streamed from the database."""
    query = (
        sa.select(
            Prospect.first_name,
            Prospect.last_name,
            Prospect.phone,
            Prospect.phone_raw,
            Prospect.email,
            Prospect.organisation,
            Prospect.profile,
            Source.name,
            Prospect.qualification,
            Prospect.disqualification_reason,
            Registration.status,
            Registration.created_at,
            Registration.updated_at,
        )
        .join(Prospect, Prospect.id == Registration.prospect_id)
        .join(Source, Source.id == Prospect.source_id)
        .where(Registration.lab_id == lab_id)
        .order_by(Prospect.last_name, Prospect.first_name, Registration.id)
        .execution_options(yield_per=CHUNK_ROWS)
    )
    if status:
        query = query.where(Registration.status == status)
    for row in db.session.execute(query):
        yield (
            row.first_name,
            row.last_name,
            export_phone(row.phone, row.phone_raw),
            row.email,
            row.organisation,
            row.profile,
            row.name,
            QUALIFICATION_LABELS.get(row.qualification, row.qualification),
            row.disqualification_reason,
            REGISTRATION_STATUS_LABELS.get(row.status, row.status),
            row.created_at,
            row.updated_at,
        )


def lab_export(lab_id: int, status: str | None = None) -> Iterator[str]:
    return csv_chunks(LAB_EXPORT_HEADER, lab_registration_rows(lab_id, status))


def lab_export_filename(lab: Lab, status: str | None = None) -> str:
    local = to_local(lab.starts_at)
    assert local is not None
    what = "confirmes" if status == "confirmed" else status or "inscriptions"
    return f"open-lab-{lab.id}-{local:%Y-%m-%d}-{what}.csv"


@managers_only
def record_export(lab: Lab, actor: User | None, status: str | None) -> None:
    """Keep a trace of who exported the personal data of a lab (the caller commits): an
    event on the lab's timeline and an entry in the audit trail."""
    audit.record("list.exported", "lab", lab.id, {"liste": "inscriptions", "statut": status})
    db.session.add(
        Event(
            kind="lab.exported",
            lab_id=lab.id,
            actor_id=actor.id if actor else None,
            data={"status": status} if status else {},
        )
    )
