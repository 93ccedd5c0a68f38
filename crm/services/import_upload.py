"""The first step of an import: the file, copied under the instance folder and checked.

The copy lives in imports/<id>.csv (relative to INSTANCE_DIR, which the web app and the
worker share) until the import is done; a file that cannot be imported leaves nothing behind.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import BinaryIO

from flask import current_app

from crm.extensions import db
from crm.models import ImportBatch
from crm.services.csv_reading import CsvFileError, inspect_file
from crm.services.permissions import require_manager_id

_COPY_CHUNK = 64 * 1024


class ImportFileError(ValueError):
    """The file cannot be imported; nothing was kept. The message is in French."""


def imports_dir() -> Path:
    return Path(current_app.config["INSTANCE_DIR"]) / "imports"


def stored_file(batch: ImportBatch) -> Path:
    return Path(current_app.config["INSTANCE_DIR"]) / batch.stored_path


def size_label(n_bytes: int) -> str:
    if n_bytes >= 1024 * 1024:
        return f"{n_bytes / (1024 * 1024):.3g} Mo".replace(".", ",")
    return f"{max(1, round(n_bytes / 1024))} ko"


def too_large_message(max_bytes: int) -> str:
    return (
        f"Le fichier dépasse la taille maximale autorisée ({size_label(max_bytes)}). "
        "Découpez-le en plusieurs fichiers ou retirez les colonnes inutiles, puis recommencez."
    )


def create_from_upload(
    stream: BinaryIO, filename: str, actor_id: int | None, max_bytes: int | None
) -> ImportBatch:
    """Store and check an uploaded file; on any problem, leave neither a row nor a file."""
    require_manager_id(actor_id)
    folder = imports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f"envoi-{secrets.token_hex(8)}.part"
    final: Path | None = None
    try:
        size = _copy_limited(stream, temporary, max_bytes)
        try:
            layout = inspect_file(temporary)
        except CsvFileError as exc:
            raise ImportFileError(str(exc)) from exc
        batch = ImportBatch(
            filename=_display_name(filename),
            size_bytes=size,
            encoding=layout.encoding,
            delimiter=layout.delimiter,
            header=layout.header,
            total_rows=layout.data_rows,
            created_by_id=actor_id,
        )
        db.session.add(batch)
        db.session.flush()
        final = folder / f"{batch.id}.csv"
        temporary.replace(final)
        batch.stored_path = f"imports/{batch.id}.csv"
        db.session.commit()
    except BaseException:
        db.session.rollback()
        temporary.unlink(missing_ok=True)
        if final is not None:
            final.unlink(missing_ok=True)
        raise
    return batch


def create_from_path(path: Path, actor_id: int | None = None) -> ImportBatch:
    """The command line: the file is copied like an upload (the original is never touched)."""
    try:
        source = path.open("rb")
    except FileNotFoundError as exc:
        raise ImportFileError(f"Fichier introuvable : {path}.") from exc
    except OSError as exc:
        raise ImportFileError(f"Impossible de lire le fichier {path}.") from exc
    with source:
        return create_from_upload(source, path.name, actor_id, None)


def _copy_limited(stream: BinaryIO, dest: Path, max_bytes: int | None) -> int:
    size = 0
    with dest.open("wb") as out:
        while chunk := stream.read(_COPY_CHUNK):
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                raise ImportFileError(too_large_message(max_bytes))
            out.write(chunk)
    return size


def _display_name(filename: str) -> str:
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:255] or "fichier.csv"
