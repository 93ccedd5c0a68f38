"""The recruitment dashboard: the funnel per source, caller or lab, the lab forecast, charts,
the people behind each figure and CSV exports. Who sees what: crm.services.funnel_export."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, abort, render_template, request
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from crm.extensions import db
from crm.forms.dashboard import DashboardFilterForm, check_step, parse_key
from crm.models import Lab
from crm.services import audit, exports
from crm.services import funnel_export as fx
from crm.services.funnel import DIMENSION_LABELS, STEP_LABELS, STEPS
from crm.services.funnel_sql import PEOPLE_LISTS

bp = Blueprint("dashboard", __name__, url_prefix="/tableau-de-bord")
Page = str | tuple[str, int] | Response | BaseResponse
LAB_TABLES = ("previsions", "a-appeler", "confirmations")
MAX_PAGE = 100_000
TABLES = ("entonnoir", "indicateurs", "conversion", *LAB_TABLES)


def _filter_form() -> DashboardFilterForm:
    form = DashboardFilterForm(formdata=request.args)
    labs = db.session.scalars(sa.select(Lab).order_by(Lab.starts_at.desc(), Lab.id)).all()
    form.lab.choices = [("", "Tous les open labs")] + [(lab.id, lab.title) for lab in labs]
    return form


def _filters(form: DashboardFilterForm) -> fx.Filters:
    by = form.by.data if current_user.is_manager else "lab"
    return fx.Filters(by, form.du.data, form.au.data, form.lab.data)


def _chosen_lab(filters: fx.Filters) -> Lab | None:
    return db.session.get(Lab, filters.lab_id) if filters.lab_id is not None else None


@bp.get("/")
def index() -> Page:
    form = _filter_form()
    if not form.validate():
        return render_template("dashboard/index.html", form=form, board=None, **_labels()), 400
    filters = _filters(form)
    board = fx.build(current_user, filters, _chosen_lab(filters))
    return render_template("dashboard/index.html", form=form, board=board, **_labels())


@bp.get("/personnes")
def people() -> Page:
    form = _filter_form()
    errors: list[str] = []
    key, step = None, "invited"
    try:
        key = parse_key(request.args.get("key"))
        step = check_step(request.args.get("step"))
    except ValueError as exc:
        errors.append(str(exc))
    if not form.validate() or errors:
        errors += [error for field in form for error in field.errors]
        return render_template("dashboard/people.html", errors=errors, page=None), 400
    filters = _filters(form) if current_user.is_manager else _caller_filters(form)
    try:
        scope = fx.people_scope(current_user, filters, key)
    except fx.NotAllowed:
        abort(403)
    query = fx.people_select(scope, key, step)
    args = filters.as_args(key="total" if key is None else key, step=step)
    if request.args.get("format") == "csv":
        rows = list(fx.people_rows(iter(db.session.scalars(query))))
        detail = {"liste": "tableau de bord", "etape": step, "lignes": len(rows)}
        audit.record("list.exported", "dashboard", key, detail)
        db.session.commit()
        return _csv(f"personnes-{step}.csv", fx.PEOPLE_HEADER, rows)
    number = min(max(request.args.get("page", 1, type=int), 1), MAX_PAGE)
    page = db.paginate(query, page=number, per_page=fx.PEOPLE_PER_PAGE, error_out=False)
    return render_template(
        "dashboard/people.html",
        errors=[],
        page=page,
        args=args,
        step_label=STEP_LABELS.get(step) or PEOPLE_LISTS[step],
        row_label=_row_label(scope, key),
        filters=filters,
    )


def _caller_filters(form: DashboardFilterForm) -> fx.Filters:
    """A caller's people list keeps the dimension asked for: the service decides."""
    return fx.Filters(form.by.data, form.du.data, form.au.data, form.lab.data)


def _row_label(scope: Any, key: int | None) -> str:
    if key is None:
        return "Total"
    row = next((r for r in fx.funnel.funnel(scope).rows if r.key == key), None)
    return row.label if row else "Inconnu"


@bp.get("/export/<table>.csv")
def export(table: str) -> Page:
    if table not in TABLES:
        abort(404)
    form = _filter_form()
    if not form.validate():
        return render_template("dashboard/index.html", form=form, board=None, **_labels()), 400
    filters = _filters(form)
    if table in LAB_TABLES:
        return _lab_export(table, filters)
    result = fx.funnel.funnel(fx.scope_for(current_user, filters))
    by = result.scope.by
    header, rows = {
        "entonnoir": (fx.funnel_header(by), fx.funnel_rows(result)),
        "indicateurs": (fx.figures_header(by), fx.figures_rows(result)),
        "conversion": (fx.conversion_header(by), fx.conversion_rows(result)),
    }[table]
    return _csv(f"{table}-par-{by}.csv", header, rows)


def _lab_export(table: str, filters: fx.Filters) -> Page:
    if not current_user.is_manager:
        abort(403)
    lab = _chosen_lab(filters)
    if lab is None:
        abort(404)
    data = fx.lab_forecast(lab)
    header, rows = {
        "previsions": (fx.FORECAST_HEADER, fx.forecast_rows(data.forecast)),
        "a-appeler": (fx.TO_CALL_HEADER, fx.to_call_rows(data.to_call)),
        "confirmations": (
            fx.CONFIRMATIONS_HEADER,
            fx.confirmation_rows(data.series, lab.target),
        ),
    }[table]
    return _csv(f"open-lab-{lab.id}-{table}.csv", header, rows)


def _csv(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    return Response(
        "".join(exports.csv_chunks(header, rows)),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def _labels() -> dict[str, Any]:
    return {
        "steps": STEPS,
        "step_labels": STEP_LABELS,
        "dimension_labels": DIMENSION_LABELS,
        "key_column": fx.KEY_COLUMN,
        "figure_columns": fx.FIGURES_COLUMNS,
    }
