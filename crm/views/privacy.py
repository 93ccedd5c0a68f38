"""Data protection pages (managers and admins): one person's data (export, erasure), the
audit trail and the people the retention job will anonymise soon."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.wrappers import Response

from crm.extensions import db
from crm.forms.privacy import EraseForm
from crm.models import Prospect
from crm.services import audit, audit_display, erasure, retention, subject_export
from crm.views import roles_required

bp = Blueprint("privacy", __name__)
MANAGERS = ("manager", "admin")
AUDIT_PER_PAGE = 50


@bp.get("/prospects/<int:prospect_id>/donnees-personnelles")
@roles_required(*MANAGERS)
def person(prospect_id: int) -> str | tuple[str, int]:
    return _render_person(db.get_or_404(Prospect, prospect_id), EraseForm(formdata=None))


@bp.get("/prospects/<int:prospect_id>/donnees-personnelles.json")
@roles_required(*MANAGERS)
def export_json(prospect_id: int) -> Response:
    prospect = db.get_or_404(Prospect, prospect_id)
    body = subject_export.as_json(prospect)
    _audit_export(prospect, "json")
    return _download(body.encode("utf-8"), "application/json", prospect, "json")


@bp.get("/prospects/<int:prospect_id>/donnees-personnelles.zip")
@roles_required(*MANAGERS)
def export_zip(prospect_id: int) -> Response:
    prospect = db.get_or_404(Prospect, prospect_id)
    body = subject_export.as_zip(prospect)
    _audit_export(prospect, "csv")
    return _download(body, "application/zip", prospect, "zip")


@bp.post("/prospects/<int:prospect_id>/effacement")
@roles_required(*MANAGERS)
def erase(prospect_id: int) -> Response | tuple[str, int]:
    prospect = db.get_or_404(Prospect, prospect_id)
    form = EraseForm()
    if not form.validate():
        return _render_person(prospect, form), 400
    try:
        result = erasure.erase(prospect, current_user)
        db.session.commit()
    except StaleDataError:  # a caller saved this person in the same instant
        db.session.rollback()
        flash(
            "La fiche a été modifiée par quelqu'un d'autre au même instant : rien n'a été "
            "effacé. Vérifiez la fiche et recommencez.",
            "error",
        )
        return redirect(url_for("prospects.show", prospect_id=prospect_id))
    if result.already:
        flash("Les données de cette personne étaient déjà effacées.", "info")
    else:
        flash(
            "Données personnelles effacées. Le téléphone et l'e-mail sont sur la liste "
            "d'opposition : un import ne les ramènera pas.",
            "success",
        )
    return redirect(url_for("prospects.show", prospect_id=prospect_id))


@bp.get("/audit/")
@roles_required(*MANAGERS)
def audit_log() -> str:
    action = request.args.get("action", "")
    filters = audit.AuditFilters(
        action=action if action in audit.ACTION_LABELS else "",
        prospect_id=request.args.get("personne", type=int),
    )
    page = audit.entries(filters, request.args.get("page", 1, type=int) or 1, AUDIT_PER_PAGE)
    return render_template(
        "privacy/audit.html",
        page=page,
        filters=filters,
        action_labels=audit.ACTION_LABELS,
        describe=audit_display.describe,
        object_label=audit_display.object_label,
    )


@bp.get("/conservation/")
@roles_required(*MANAGERS)
def retention_list() -> str:
    return render_template(
        "privacy/retention.html",
        people=retention.upcoming(),
        days=retention.retention_days(),
        warning_days=retention.WARNING_DAYS,
    )


def _render_person(prospect: Prospect, form: EraseForm) -> str:
    return render_template("privacy/person.html", prospect=prospect, form=form)


def _audit_export(prospect: Prospect, fmt: str) -> None:
    audit.record("prospect.exported", "prospect", prospect.id, {"format": fmt})
    db.session.commit()


def _download(body: bytes, mimetype: str, prospect: Prospect, extension: str) -> Response:
    name = subject_export.filename(prospect, extension)
    return Response(
        body,
        mimetype=mimetype,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )
