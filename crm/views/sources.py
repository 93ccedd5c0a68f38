"""Sources of prospects (an annuaire, a network, a previous lab): managers only."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from crm.extensions import db
from crm.forms.sources import SourceForm
from crm.models import Source
from crm.services.labs import LabError, save_source, sources_with_counts
from crm.views import roles_required

bp = Blueprint("sources", __name__, url_prefix="/sources")
DUPLICATE = "Une source porte déjà ce nom : choisissez un autre nom."


@bp.get("/")
@roles_required("manager", "admin")
def index() -> str:
    return render_template("sources/index.html", sources=sources_with_counts())


@bp.route("/nouvelle", methods=["GET", "POST"])
@roles_required("manager", "admin")
def create() -> tuple[str, int] | Response:
    return _edit(None)


@bp.route("/<int:source_id>/modifier", methods=["GET", "POST"])
@roles_required("manager", "admin")
def edit(source_id: int) -> tuple[str, int] | Response:
    return _edit(db.get_or_404(Source, source_id))


def _edit(source: Source | None) -> tuple[str, int] | Response:
    form = SourceForm(obj=source)
    if form.validate_on_submit():
        try:
            saved = save_source(source, form.name.data or "", form.description.data or "")
            db.session.commit()
        except (LabError, sa.exc.IntegrityError) as exc:
            db.session.rollback()
            message = str(exc) if isinstance(exc, LabError) else DUPLICATE
            form.name.errors = [*form.name.errors, message]
        else:
            flash(f"Source « {saved.name} » enregistrée.", "success")
            return redirect(url_for(".index"))
    status = 400 if form.errors or form.name.errors else 200
    return render_template("sources/form.html", form=form, source=source), status
