"""CSV imports of prospects: mapping, running (in the request or in a worker), resuming.

The uploaded file (crm.services.import_upload) is read as a stream, batch by batch
(crm.services.import_rows); each batch commits with the import's counters, so that a run
interrupted by a crash resumes where it stopped (the job is safe to run twice) and the
progress bar is true.
"""

from __future__ import annotations

import logging
from collections import deque
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path

import redis
import sqlalchemy as sa

from crm.extensions import db
from crm.models import Event, ImportBatch, Lab, Source
from crm.models.prospect import CHANNELS
from crm.services.csv_reading import CsvFileError, iter_records, open_text
from crm.services.import_mapping import guess_mapping, mapping_from_names, mapping_problems
from crm.services.import_rows import ImportContext, process_batch
from crm.services.import_upload import create_from_path, stored_file
from crm.timeutil import utcnow

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
JOB_TIMEOUT = timedelta(minutes=30)
LEGAL_BASES = {
    "consent": "Consentement recueilli par la source (formulaire, inscription…)",
    "public_task": "Mission d'intérêt public du service",
    "legitimate_interest": "Intérêt légitime",
}


class ImportSetupError(ValueError):
    """The import cannot start as asked; the message is in French."""


def import_file(
    path: Path,
    source_name: str,
    lab_id: int | None = None,
    names: dict[str, str] | None = None,
    actor_id: int | None = None,
) -> ImportBatch:
    """Upload, map (`names`: {column header: field}, else the guesses) and run, in one go."""
    batch = create_from_path(path, actor_id)
    try:
        if names is None:
            mapping = guess_mapping(batch.header)
        else:
            mapping = mapping_from_names(batch.header, names)
        configure(batch, mapping, source_name=source_name, lab_id=lab_id)
    except ValueError as exc:
        db.session.rollback()
        discard(batch)
        raise ImportSetupError(str(exc)) from exc
    return run(batch.id) or batch


def get_or_create_source(name: str) -> Source:
    name = " ".join(name.split())
    if not name:
        raise ImportSetupError("Indiquez le nom de la source.")
    if len(name) > 120:
        raise ImportSetupError("Le nom de la source ne doit pas dépasser 120 caractères.")
    source = db.session.scalar(sa.select(Source).where(sa.func.lower(Source.name) == name.lower()))
    if source is None:
        source = Source(name=name, description="Créée lors d'un import de fichier.")
        db.session.add(source)
        db.session.flush()
    return source


def configure(
    batch: ImportBatch,
    mapping: list[str],
    source_id: int | None = None,
    source_name: str = "",
    lab_id: int | None = None,
    channels: list[str] | None = None,
    basis: str = "",
) -> ImportBatch:
    """Record how to read the file and what to do with the people; the caller starts it.

    The source is an existing one (`source_id`) or found or created by name (`source_name`).
    """
    if batch.status != "uploaded":
        raise ImportSetupError("Cet import a déjà été lancé.")
    problems = mapping_problems(batch.header, mapping)
    if problems:
        raise ImportSetupError(" ".join(problems))
    channels = [c for c in CHANNELS if c in (channels or [])]
    if channels and basis not in LEGAL_BASES:
        raise ImportSetupError(
            "Indiquez la base légale de la prise de contact pour les canaux autorisés."
        )
    if lab_id is not None and db.session.get(Lab, lab_id) is None:
        raise ImportSetupError(f"Open lab introuvable (n° {lab_id}).")
    source = db.session.get(Source, source_id) if source_id else get_or_create_source(source_name)
    if source is None:
        raise ImportSetupError("Source introuvable : choisissez-en une autre.")
    batch.mapping = list(mapping)
    batch.source_id = source.id
    batch.lab_id = lab_id
    batch.channels = channels
    batch.basis = (
        f"{LEGAL_BASES[basis]} (import n° {batch.id}, {batch.filename})" if channels else ""
    )
    db.session.commit()
    return batch


def start(batch: ImportBatch, inline_max_rows: int) -> ImportBatch:
    """Small files run now, in the request; larger ones go to a worker."""
    if batch.total_rows <= inline_max_rows:
        return run(batch.id) or batch
    return enqueue(batch)


def job_id(import_id: int) -> str:
    return f"import-{import_id}"


def enqueue(batch: ImportBatch) -> ImportBatch:
    from workers.queues import IMPORTS, get_queue

    previous = batch.status
    batch.status = "queued"
    db.session.commit()
    try:
        get_queue(IMPORTS).enqueue(
            "workers.jobs.run_import",
            batch.id,
            job_id=job_id(batch.id),
            job_timeout=int(JOB_TIMEOUT.total_seconds()),
            result_ttl=24 * 3600,
        )
    except redis.RedisError as exc:
        log.error("could not enqueue import %s: %s", batch.id, exc)
        batch.status = previous
        db.session.commit()
        raise ImportSetupError(
            "Le traitement en arrière-plan est momentanément indisponible : l'import n'a pas "
            "commencé. Réessayez dans quelques minutes."
        ) from exc
    return batch


def can_resume(batch: ImportBatch) -> bool:
    """A failed import, or one whose job is lost: Redis forgot it, or its worker died (RQ
    marks the job failed, or it has been running for longer than the job timeout)."""
    if batch.status == "failed":
        return True
    if batch.status == "running" and batch.started_at and batch.started_at < _stale_before():
        return True
    return batch.in_progress and _job_lost(batch.id)


def _job_lost(import_id: int) -> bool:
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    from crm.redis_conn import get_redis

    try:
        job = Job.fetch(job_id(import_id), connection=get_redis())
        status = job.get_status()
    except NoSuchJobError:
        return True
    except redis.RedisError:  # cannot tell: do not offer to start it twice
        return False
    return status in ("failed", "stopped", "canceled")


def resume(batch: ImportBatch, inline_max_rows: int) -> ImportBatch:
    """Start a failed or lost import again, from the first row not yet imported."""
    if not can_resume(batch):
        return batch
    batch.status = "failed"  # claimable again: nothing else is working on it
    db.session.commit()
    return start(batch, inline_max_rows)


def _stale_before() -> datetime:
    return utcnow() - JOB_TIMEOUT


def run(import_id: int) -> ImportBatch | None:
    """Import the file (or the rest of it); does nothing if done or running elsewhere."""
    batch = db.session.get(ImportBatch, import_id)
    if batch is None or not batch.mapping or batch.source_id is None:
        return batch
    if not _claim(import_id):
        return db.session.get(ImportBatch, import_id)
    try:
        _process_file(batch)
        _finish(batch)
    except Exception as exc:
        db.session.rollback()
        log.exception("import %s failed", import_id)
        _fail(import_id, exc)
    return db.session.get(ImportBatch, import_id)


def _claim(import_id: int) -> bool:
    """Mark the import running, atomically: two runs never work on it at once."""
    table = ImportBatch.__table__
    query = (
        sa.update(table)
        .where(
            table.c.id == import_id,
            sa.or_(
                table.c.status.in_(("uploaded", "queued", "failed")),
                sa.and_(table.c.status == "running", table.c.started_at < _stale_before()),
            ),
        )
        .values(status="running", started_at=utcnow(), error="")
    )
    claimed = db.session.execute(query).rowcount == 1
    db.session.commit()
    return claimed


def _context(batch: ImportBatch) -> ImportContext:
    source = db.session.get(Source, batch.source_id)
    return ImportContext(
        import_id=batch.id,
        filename=batch.filename,
        mapping=list(batch.mapping or []),
        source_id=batch.source_id or 0,
        source_name=source.name if source else "",
        lab_id=batch.lab_id,
        channels=list(batch.channels or []),
        basis=batch.basis,
        actor_id=batch.created_by_id,
    )


def _process_file(batch: ImportBatch) -> None:
    ctx = _context(batch)
    path = stored_file(batch)
    if not path.exists():
        raise CsvFileError("Le fichier de cet import est introuvable : importez-le de nouveau.")
    with open_text(path, batch.encoding) as stream:
        records = iter_records(stream, batch.delimiter)
        next(records, None)  # the header
        deque(islice(records, batch.processed_rows), maxlen=0)  # already imported: resume
        while chunk := list(islice(records, BATCH_SIZE)):
            counts = process_batch(ctx, chunk)
            batch.processed_rows += len(chunk)
            batch.created_count += counts.created
            batch.merged_count += counts.merged
            batch.rejected_count += counts.rejected
            db.session.commit()


def _finish(batch: ImportBatch) -> None:
    batch.status = "done"
    batch.finished_at = utcnow()
    batch.total_rows = batch.processed_rows
    db.session.add(
        Event(
            kind="import.done",
            actor_id=batch.created_by_id,
            lab_id=batch.lab_id,
            reason=f"Import n° {batch.id} ({batch.filename})",
            data={
                "import_id": batch.id,
                "created": batch.created_count,
                "merged": batch.merged_count,
                "rejected": batch.rejected_count,
            },
        )
    )
    db.session.commit()
    stored_file(batch).unlink(missing_ok=True)  # the people are in the database now


def _fail(import_id: int, exc: Exception) -> None:
    try:
        batch = db.session.get(ImportBatch, import_id)
        if batch is None:
            return
        batch.status = "failed"
        if isinstance(exc, CsvFileError):
            batch.error = str(exc)
        else:
            batch.error = (
                f"L'import s'est interrompu après {batch.processed_rows} lignes à cause d'une "
                f"erreur inattendue ({type(exc).__name__}). Les lignes déjà traitées sont "
                "enregistrées : relancez l'import pour reprendre à la ligne suivante."
            )
        db.session.commit()
    except Exception:  # the database itself may be what failed
        db.session.rollback()
        log.exception("could not record the failure of import %s", import_id)


def discard(batch: ImportBatch) -> None:
    """Drop an import that was uploaded but never started, and its file."""
    if batch.status != "uploaded":
        raise ImportSetupError("Seul un import qui n'a pas commencé peut être abandonné.")
    path = stored_file(batch)
    db.session.delete(batch)
    db.session.commit()
    path.unlink(missing_ok=True)
