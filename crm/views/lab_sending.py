"""A lab's automated follow-ups for managers: lists by state, pause/resume, send window,
review of doubtful sends. The rules live in crm.services.lab_sending."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from crm.extensions import db
from crm.forms.lab_sending import ActionForm, ReviewForm, SendWindowForm
from crm.models import Lab
from crm.models.followup import SEQUENCE_KIND_LABELS, STEP_CHANNEL_LABELS
from crm.services import lab_sending
from crm.services.lab_sending import TABS, TABS_BY_SLUG, SendingError
from crm.services.window import send_window
from crm.views import roles_required

bp = Blueprint("lab_sending", __name__, url_prefix="/labs/<int:lab_id>/relances")


@bp.get("/")
@roles_required("manager", "admin")
def index(lab_id: int) -> tuple[str, int] | str:
    lab = db.get_or_404(Lab, lab_id)
    return _render(lab, _window_form(lab))


@bp.post("/pause")
@roles_required("manager", "admin")
def pause(lab_id: int) -> BaseResponse:
    lab = db.get_or_404(Lab, lab_id)
    if ActionForm().validate_on_submit() and lab_sending.pause(lab, current_user):
        db.session.commit()
        flash("Envois suspendus : aucun message automatique ne part pour cet open lab.", "info")
    return redirect(url_for(".index", lab_id=lab.id))


@bp.post("/reprise")
@roles_required("manager", "admin")
def resume(lab_id: int) -> BaseResponse:
    lab = db.get_or_404(Lab, lab_id)
    if ActionForm().validate_on_submit() and lab.sending_paused:
        overdue = lab_sending.resume(lab, current_user)
        db.session.commit()
        message = "Envois repris."
        if overdue:
            message += (
                f" {overdue} message{'s' if overdue > 1 else ''} en retard "
                f"partira{'ont' if overdue > 1 else ''} dans la fenêtre d'envoi, après une "
                "nouvelle vérification de chaque personne."
            )
        flash(message, "success")
    return redirect(url_for(".index", lab_id=lab.id))


@bp.post("/fenetre")
@roles_required("manager", "admin")
def window(lab_id: int) -> tuple[str, int] | str | BaseResponse:
    lab = db.get_or_404(Lab, lab_id)
    form = SendWindowForm()
    if form.validate_on_submit():
        try:
            chosen = lab_sending.check_window(
                int(form.first_day.data), int(form.last_day.data), form.start.data, form.end.data
            )
            moved = lab_sending.set_window(lab, chosen, current_user)
            db.session.commit()
        except SendingError as exc:
            db.session.rollback()
            field = getattr(form, exc.field or "", None)
            (field.errors if field is not None else form.form_errors).append(str(exc))
        else:
            _flash_window(lab, moved)
            return redirect(url_for(".index", lab_id=lab.id))
    return _render(lab, form), 400


@bp.post("/fenetre/defaut")
@roles_required("manager", "admin")
def default_window(lab_id: int) -> BaseResponse:
    lab = db.get_or_404(Lab, lab_id)
    if ActionForm().validate_on_submit():
        moved = lab_sending.set_window(lab, None, current_user)
        db.session.commit()
        _flash_window(lab, moved)
    return redirect(url_for(".index", lab_id=lab.id))


@bp.post("/<int:followup_id>/verification")
@roles_required("manager", "admin")
def review(lab_id: int, followup_id: int) -> BaseResponse:
    lab = db.get_or_404(Lab, lab_id)
    form = ReviewForm()
    if not form.validate_on_submit():
        flash("Choisissez « Envoyé » ou « Non envoyé ».", "error")
    else:
        try:
            lab_sending.review(lab, followup_id, form.outcome.data, current_user)
            db.session.commit()
        except LookupError:
            db.session.rollback()
            abort(404)
        except SendingError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            flash("Vérification enregistrée. Le message ne sera pas renvoyé.", "success")
    return redirect(url_for(".index", lab_id=lab.id, onglet="a-verifier"))


def _window_form(lab: Lab) -> SendWindowForm:
    current = send_window(lab)
    days = sorted(current.days)
    return SendWindowForm(
        data={
            "first_day": str(days[0] + 1),
            "last_day": str(days[-1] + 1),
            "start": current.start,
            "end": current.end,
        }
    )


def _flash_window(lab: Lab, moved: int) -> None:
    message = f"Fenêtre d'envoi : {send_window(lab).describe()}."
    if moved:
        plural = "s" if moved > 1 else ""
        message += f" {moved} message{plural} programmé{plural} décalé{plural}."
    flash(message, "success")


def _render(lab: Lab, window_form: SendWindowForm) -> str:
    tab = TABS_BY_SLUG.get(request.args.get("onglet", ""), TABS[0])
    page = request.args.get("page", 1, type=int)
    rows = db.paginate(
        lab_sending.tab_query(lab.id, tab),
        page=page,
        per_page=lab_sending.PER_PAGE,
        error_out=False,
    )
    counts = lab_sending.status_counts(lab.id)
    return render_template(
        "lab_sending/index.html",
        lab=lab,
        tabs=TABS,
        tab=tab,
        rows=rows,
        counts=counts,
        tab_counts=lab_sending.tab_counts(counts),
        window=send_window(lab),
        own_window=bool(lab.send_days or lab.send_hours),
        window_form=window_form,
        action_form=ActionForm(),
        review_form=ReviewForm(),
        kind_labels=SEQUENCE_KIND_LABELS,
        channel_labels=STEP_CHANNEL_LABELS,
    )
