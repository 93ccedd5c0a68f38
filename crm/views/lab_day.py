"""After the lab, for managers: close it, link the next lab (its attendees are invited),
flag motivated and active users; and the series page. Rules: crm.services.lab_day and
crm.services.lab_series."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.wrappers import Response

from crm.extensions import db
from crm.forms.lab_day import ActionForm, FlagForm, NextLabForm
from crm.models import Lab, Registration
from crm.services import lab_day, lab_series, labs
from crm.services.lab_day import LabDayError
from crm.timeutil import format_local, utcnow
from crm.views import roles_required

bp = Blueprint("lab_day", __name__, url_prefix="/labs/<int:lab_id>")
MANAGERS = ("manager", "admin")
CHANGED_MEANWHILE = (
    "Une fiche a été modifiée par quelqu'un d'autre au même instant : rien n'a été "
    "enregistré. Vérifiez la page et recommencez."
)


def _next_lab_form(lab: Lab) -> NextLabForm:
    form = NextLabForm()
    choices = [
        (str(c.id), f"{c.title} — {format_local(c.starts_at)}")
        for c in lab_day.next_lab_candidates(lab)
    ]
    form.next_lab.choices = [("", "Choisir un open lab"), *choices]
    return form


def _render(lab: Lab, next_form: NextLabForm | None = None, status: int = 200) -> tuple[str, int]:
    html = render_template(
        "lab_day/show.html",
        lab=lab,
        counts=labs.status_counts(lab.id),
        started=utcnow() >= lab.starts_at,
        attendees=lab_day.attendees(lab),
        returning=lab_day.returning_count(lab),
        action_form=ActionForm(),
        flag_form=FlagForm(),
        next_form=next_form or _next_lab_form(lab),
    )
    return html, status


@bp.get("/apres")
@roles_required(*MANAGERS)
def show(lab_id: int) -> tuple[str, int]:
    return _render(db.get_or_404(Lab, lab_id))


@bp.post("/apres/clore")
@roles_required(*MANAGERS)
def close(lab_id: int) -> Response | tuple[str, int]:
    lab = db.get_or_404(Lab, lab_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        closing = lab_day.close(lab, current_user)
    except LabDayError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for(".show", lab_id=lab.id))
    except StaleDataError:  # a caller or the desk saved one of its people in the same instant
        db.session.rollback()
        flash(CHANGED_MEANWHILE, "error")
        return redirect(url_for(".show", lab_id=lab.id))
    message = (
        f"Open lab clos : {closing.thanked} présent(s) remercié(s), "
        f"{closing.no_shows} absent(s) noté(s)."
    )
    if closing.invitations_queued:
        message += " Les présents sont inscrits à l'open lab suivant dans un instant."
    else:
        message += " Choisissez l'open lab suivant pour y inviter les présents."
    flash(message, "success")
    return redirect(url_for(".show", lab_id=lab.id))


@bp.post("/apres/suivant")
@roles_required(*MANAGERS)
def link_next(lab_id: int) -> Response | tuple[str, int]:
    lab = db.get_or_404(Lab, lab_id)
    form = _next_lab_form(lab)
    if not form.validate_on_submit():
        return _render(lab, form, 400)
    try:
        chosen = lab_day.link_next(lab, int(form.next_lab.data), current_user)
        db.session.commit()
    except LabDayError as exc:
        db.session.rollback()
        form.next_lab.errors = [str(exc)]
        return _render(lab, form, 400)
    queued = lab_day.queue_invitations(lab)
    message = f"« {chosen.title} » est l'open lab suivant."
    if queued:
        message += " Les présents y sont inscrits dans un instant, avec les relances d'invitation."
    flash(message, "success")
    return redirect(url_for(".show", lab_id=lab.id))


def _flag(lab_id: int, registration_id: int, kind: str) -> Response:
    lab = db.get_or_404(Lab, lab_id)
    registration = db.get_or_404(Registration, registration_id)
    form = FlagForm()
    if registration.lab_id != lab.id:
        abort(404)
    if not form.validate_on_submit():
        abort(400)
    setter = lab_day.flag_motivated if kind == "motivated" else lab_day.mark_active_user
    try:
        setter(registration, current_user, form.value.data == "1")
        db.session.commit()
    except LabDayError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    except StaleDataError:
        db.session.rollback()
        flash(CHANGED_MEANWHILE, "error")
    return redirect(url_for(".show", lab_id=lab.id) + "#presents")


@bp.post("/apres/<int:registration_id>/motive")
@roles_required(*MANAGERS)
def motivated(lab_id: int, registration_id: int) -> Response:
    return _flag(lab_id, registration_id, "motivated")


@bp.post("/apres/<int:registration_id>/actif")
@roles_required(*MANAGERS)
def active(lab_id: int, registration_id: int) -> Response:
    return _flag(lab_id, registration_id, "active")


@bp.get("/serie")
@roles_required(*MANAGERS)
def series(lab_id: int) -> str:
    lab = db.get_or_404(Lab, lab_id)
    return render_template("lab_day/series.html", lab=lab, series=lab_series.series_of(lab))
