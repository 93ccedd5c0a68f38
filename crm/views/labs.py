"""Open labs: list, page with the recruitment overview and the waiting list, creation, edit
and CSV export."""

from __future__ import annotations

from dataclasses import asdict

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from crm.extensions import db
from crm.forms.labs import LabForm, options
from crm.models import Lab
from crm.models.registration import REGISTRATION_STATUS_LABELS, REGISTRATION_STATUSES
from crm.services import exports, lab_day, lab_sending
from crm.services.lab_overview import lab_overview, no_show_hint, waitlist_overview
from crm.services.labs import (
    LabError,
    LabInput,
    confirmed_counts,
    create_lab,
    lab_warnings,
    lab_when,
    next_lab_choices,
    previous_labs,
    update_lab,
)
from crm.views import roles_required

bp = Blueprint("labs", __name__, url_prefix="/labs")

LAB_BADGES = {
    "draft": "",
    "recruiting": "fr-badge--info",
    "closed": "fr-badge--warning",
    "done": "fr-badge--success",
}
REGISTRATION_BADGES = {
    "to_contact": "",
    "contacted": "fr-badge--info",
    "interested": "fr-badge--new",
    "confirmed": "fr-badge--success",
    "attended": "fr-badge--success",
    "no_show": "fr-badge--error",
    "declined": "fr-badge--warning",
    "disqualified": "",
    "cancelled": "fr-badge--error",
    "waitlisted": "fr-badge--new",
}


@bp.app_template_filter("lab_badge")
def lab_badge(status: str) -> str:
    return LAB_BADGES.get(status, "")


@bp.app_template_filter("registration_badge")
def registration_badge(status: str) -> str:
    return REGISTRATION_BADGES.get(status, "")


bp.add_app_template_filter(lab_when, "lab_when")


@bp.app_template_filter("fr_int")
def fr_int(value: int) -> str:
    """12345 -> '12 345' (narrow no-break space, as French typography wants)."""
    return f"{value:,}".replace(",", "\u202f")


@bp.get("/")
def index() -> str:
    labs = list(db.session.scalars(sa.select(Lab).order_by(Lab.starts_at.desc(), Lab.id.desc())))
    confirmed = confirmed_counts([lab.id for lab in labs])
    return render_template("labs/index.html", labs=labs, confirmed=confirmed)


@bp.get("/<int:lab_id>")
def show(lab_id: int) -> str:
    lab = db.get_or_404(Lab, lab_id)
    return render_template(
        "labs/show.html",
        lab=lab,
        overview=lab_overview(lab),
        waiting=waitlist_overview(lab),
        previous=previous_labs(lab),
        warnings=lab_warnings(lab) if current_user.is_manager else [],
        sending=lab_sending.tab_counts(lab_sending.status_counts(lab.id)),
        statuses=REGISTRATION_STATUSES,
        status_labels=REGISTRATION_STATUS_LABELS,
    )


@bp.route("/nouveau", methods=["GET", "POST"])
@roles_required("manager", "admin")
def create() -> tuple[str, int] | BaseResponse:
    form = LabForm()
    form.next_lab_id.choices = options([("", "Aucun"), *next_lab_choices()])
    if form.validate_on_submit():
        try:
            lab, warnings = create_lab(_lab_input(form), current_user)
            db.session.commit()
        except LabError as exc:
            db.session.rollback()
            _attach(form, exc)
        else:
            flash(f"Open lab « {lab.title} » créé.", "success")
            for warning in warnings:
                flash(warning, "warning")
            return redirect(url_for(".show", lab_id=lab.id))
    return _render_form(form, None)


@bp.route("/<int:lab_id>/modifier", methods=["GET", "POST"])
@roles_required("manager", "admin")
def edit(lab_id: int) -> tuple[str, int] | BaseResponse:
    lab = db.get_or_404(Lab, lab_id)
    form = LabForm(data=asdict(LabInput.from_lab(lab)))
    form.next_lab_id.choices = options([("", "Aucun"), *next_lab_choices(exclude_id=lab.id)])
    if form.validate_on_submit():
        try:
            warnings = update_lab(lab, _lab_input(form), current_user)
            db.session.commit()
            # A closed lab that just got its next lab: its attendees are invited there.
            lab_day.queue_invitations(lab)
        except LabError as exc:
            db.session.rollback()
            _attach(form, exc)
        else:
            flash(f"Open lab « {lab.title} » mis à jour.", "success")
            for warning in warnings:
                flash(warning, "warning")
            return redirect(url_for(".show", lab_id=lab.id))
    return _render_form(form, lab)


@bp.get("/<int:lab_id>/export.csv")
@roles_required("manager", "admin")
def export(lab_id: int) -> Response:
    lab = db.get_or_404(Lab, lab_id)
    status = request.args.get("statut")
    status = status if status in REGISTRATION_STATUSES else None
    filename = exports.lab_export_filename(lab, status)
    exports.record_export(lab, current_user, status)
    db.session.commit()
    return Response(
        stream_with_context(exports.lab_export(lab_id, status)),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def _lab_input(form: LabForm) -> LabInput:
    return LabInput(
        title=form.title.data or "",
        day=form.day.data,
        start=form.start.data,
        end=form.end.data,
        problem=form.problem.data or "",
        venue=form.venue.data or "",
        capacity=form.capacity.data,
        target=form.target.data,
        status=form.status.data,
        next_lab_id=form.next_lab_id.data,
        overbooking=form.overbooking.data,
        offer_hours=form.offer_hours.data,
    )


def _attach(form: LabForm, exc: LabError) -> None:
    """Show a service refusal next to its field (or above the form)."""
    field = getattr(form, exc.field, None) if exc.field else None
    if field is None:
        form.form_errors.append(str(exc))
    else:
        field.errors = [*field.errors, str(exc)]


def _render_form(form: LabForm, lab: Lab | None) -> tuple[str, int]:
    has_errors = bool(form.form_errors) or any(f.errors for f in form)
    hint = no_show_hint(lab) if lab is not None else None
    return render_template(
        "labs/form.html", form=form, lab=lab, no_show_hint=hint
    ), 400 if has_errors else 200
