"""What an import produced: the recent imports, the rejected rows and their CSV to fix."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import sqlalchemy as sa

from crm.extensions import db
from crm.models import ImportBatch, ImportRejection
from crm.services.csv_reading import split_raw
from crm.services.exports import neutralise


def recent(limit: int = 10) -> list[ImportBatch]:
    query = sa.select(ImportBatch).order_by(ImportBatch.id.desc()).limit(limit)
    return list(db.session.scalars(query))


def rejections_query(import_id: int) -> sa.Select[tuple[ImportRejection]]:
    return (
        sa.select(ImportRejection)
        .where(ImportRejection.import_id == import_id)
        .order_by(ImportRejection.line_number, ImportRejection.id)
    )


def rejected_rows_csv(batch: ImportBatch) -> Iterator[str]:
    """The rejected rows to fix and import again: the file's columns, then "ligne" and "motif".

    Semicolons and UTF-8 with a byte order mark, so that French Excel opens it as it is.
    Formula-looking cells get a leading quote (a spreadsheet never runs them); the import
    removes that quote again (crm.services.import_rules.cell_value).
    """
    header = list(batch.header)
    width = len(header)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow([*header, "ligne", "motif"])
    yield "\ufeff" + _drain(buffer)
    query = rejections_query(batch.id).execution_options(yield_per=500)
    for n, rejection in enumerate(db.session.scalars(query), start=1):
        cells = split_raw(rejection.raw, batch.delimiter)
        cells += [""] * (width - len(cells))
        row = [*cells[:width], rejection.line_number, rejection.reason, *cells[width:]]
        writer.writerow([neutralise(c) if isinstance(c, str) else c for c in row])
        if n % 500 == 0:
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def first_rejections(import_id: int, limit: int) -> list[ImportRejection]:
    return list(db.session.scalars(rejections_query(import_id).limit(limit)))
