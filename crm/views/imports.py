"""CSV import of prospects, for managers: upload → mapping → result (with progress)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from crm.extensions import db
from crm.forms.imports import MappingForm, UploadForm, mapping_form
from crm.models import ImportBatch, Lab, Source
from crm.services import import_results, import_upload, imports
from crm.services.csv_reading import DELIMITER_LABELS, ENCODING_LABELS, read_preview
from crm.services.import_mapping import guess_mapping
from crm.views import roles_required

bp = Blueprint("imports", __name__, url_prefix="/imports")
MANAGERS = ("manager", "admin")
_MULTIPART_MARGIN = 64 * 1024  # the form around the file


@bp.url_value_preprocessor
def _limit_upload_size(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Runs before the CSRF check reads the body: a too large upload is refused unread."""
    if endpoint == "imports.new":
        request.max_content_length = current_app.config["IMPORT_MAX_BYTES"] + _MULTIPART_MARGIN


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge) -> tuple[str, int]:
    from crm.views.errors import render_error

    if not current_user.is_authenticated or current_user.role not in MANAGERS:
        return render_error(413)
    form = UploadForm(formdata=None)
    form.file.errors = [import_upload.too_large_message(current_app.config["IMPORT_MAX_BYTES"])]
    return _render_new(form), 413


def _get_batch(import_id: int) -> ImportBatch:
    return db.get_or_404(ImportBatch, import_id)


def _render_new(form: UploadForm) -> str:
    return render_template(
        "imports/new.html",
        form=form,
        recent=import_results.recent(),
        max_bytes=current_app.config["IMPORT_MAX_BYTES"],
        max_label=import_upload.size_label(current_app.config["IMPORT_MAX_BYTES"]),
    )


@bp.route("/nouveau", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def new() -> Any:
    form = UploadForm()
    if form.validate_on_submit():
        upload = form.file.data
        try:
            batch = import_upload.create_from_upload(
                upload.stream,
                upload.filename or "",
                current_user.id,
                current_app.config["IMPORT_MAX_BYTES"],
            )
        except import_upload.ImportFileError as exc:
            form.file.errors = [str(exc)]
        else:
            return redirect(url_for("imports.mapping", import_id=batch.id))
    return _render_new(form), 400 if form.file.errors else 200


def _build_mapping_form(batch: ImportBatch) -> MappingForm:
    sources = db.session.execute(sa.select(Source.id, Source.name).order_by(Source.name)).all()
    labs = db.session.execute(
        sa.select(Lab.id, Lab.title).where(Lab.status != "done").order_by(Lab.starts_at)
    ).all()
    return mapping_form(
        batch.header,
        guess_mapping(batch.header),
        [(row.id, row.name) for row in sources],
        [(row.id, row.title) for row in labs],
    )


@bp.route("/<int:import_id>/correspondance", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def mapping(import_id: int) -> Any:
    batch = _get_batch(import_id)
    if batch.status != "uploaded":
        return redirect(url_for("imports.show", import_id=batch.id))
    form = _build_mapping_form(batch)
    error = None
    if form.validate_on_submit():
        try:
            imports.configure(
                batch,
                form.mapping(),
                source_id=form.source_id(),
                source_name=form.new_source.data or "",
                lab_id=form.lab_id(),
                channels=form.channels.data,
                basis=form.basis.data or "",
            )
            imports.start(batch, current_app.config["IMPORT_INLINE_MAX_ROWS"])
        except imports.ImportSetupError as exc:
            db.session.rollback()
            error = str(exc)
        else:
            return redirect(url_for("imports.show", import_id=import_id))
    try:
        preview = read_preview(import_upload.stored_file(batch), batch.encoding, batch.delimiter)
    except (OSError, ValueError):  # the file vanished: the page says so instead of failing
        preview = []
    status = 400 if request.method == "POST" else 200
    return render_template(
        "imports/mapping.html",
        batch=batch,
        form=form,
        preview=preview,
        error=error,
        encoding_label=ENCODING_LABELS.get(batch.encoding, batch.encoding),
        delimiter_label=DELIMITER_LABELS.get(batch.delimiter, batch.delimiter),
        inline_max=current_app.config["IMPORT_INLINE_MAX_ROWS"],
    ), status


@bp.post("/<int:import_id>/abandon")
@roles_required(*MANAGERS)
def discard(import_id: int) -> Any:
    batch = _get_batch(import_id)
    try:
        imports.discard(batch)
    except imports.ImportSetupError as exc:
        flash(str(exc), "error")
        return redirect(url_for("imports.show", import_id=import_id))
    flash("Import abandonné : le fichier a été supprimé.", "info")
    return redirect(url_for("imports.new"))


@bp.get("/<int:import_id>")
@roles_required(*MANAGERS)
def show(import_id: int) -> Any:
    batch = _get_batch(import_id)
    if batch.status == "uploaded":
        return redirect(url_for("imports.mapping", import_id=import_id))
    page = request.args.get("page", 1, type=int)
    rejections = db.paginate(
        import_results.rejections_query(batch.id), page=page, per_page=50, error_out=False
    )
    return render_template(
        "imports/show.html",
        batch=batch,
        rejections=rejections,
        can_resume=imports.can_resume(batch),
    )


@bp.get("/<int:import_id>/progress")
@roles_required(*MANAGERS)
def progress(import_id: int) -> Response:
    return jsonify(_get_batch(import_id).progress())


@bp.post("/<int:import_id>/relancer")
@roles_required(*MANAGERS)
def resume(import_id: int) -> Any:
    batch = _get_batch(import_id)
    try:
        imports.resume(batch, current_app.config["IMPORT_INLINE_MAX_ROWS"])
    except imports.ImportSetupError as exc:
        flash(str(exc), "error")
    return redirect(url_for("imports.show", import_id=import_id))


@bp.get("/<int:import_id>/lignes-rejetees.csv")
@roles_required(*MANAGERS)
def rejected_csv(import_id: int) -> Response:
    batch = _get_batch(import_id)
    filename = f"import-{batch.id}-lignes-rejetees.csv"
    return Response(
        stream_with_context(import_results.rejected_rows_csv(batch)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
