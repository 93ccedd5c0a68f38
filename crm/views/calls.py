"""The caller workspace: next call, the call page and the outcome form."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.wrappers import Response

from crm.extensions import db
from crm.forms.calls import CallOutcomeForm, NextCallForm, SkipForm
from crm.models import CallTask, Lab, Registration
from crm.models.call import CALL_OUTCOME_LABELS
from crm.services import call_queue, caller_stats, calls, timeline
from crm.services.normalise import parse_id
from crm.services.window import call_window
from crm.timeutil import from_local

bp = Blueprint("calls", __name__, url_prefix="/appels")


@bp.get("/")
def workspace() -> str:
    labs = db.session.scalars(
        sa.select(Lab).where(Lab.status == "recruiting").order_by(Lab.starts_at)
    ).all()
    day = caller_stats.caller_day(current_user)
    return render_template("calls/workspace.html", labs=labs, day=day, form=NextCallForm())


@bp.post("/labs/<int:lab_id>/suivant")
def next_call(lab_id: int) -> Response:
    lab = db.get_or_404(Lab, lab_id)
    if not NextCallForm().validate_on_submit():
        abort(400)
    if lab.status != "recruiting":
        flash(f"« {lab.title} » n'est pas en recrutement : aucun appel à passer.", "warning")
        return redirect(url_for("calls.workspace"))
    return _serve_next(lab)


def _serve_next(lab: Lab) -> Response:
    served = call_queue.next_call(lab.id, current_user)
    if served is None:
        flash(f"Plus personne à appeler pour « {lab.title} » pour l'instant.", "info")
        return redirect(url_for("calls.workspace"))
    args = {"tache": served.task.id} if served.task else {}
    return redirect(url_for("calls.call_page", registration_id=served.registration.id, **args))


def _task(registration: Registration, raw_id: str | None) -> CallTask | None:
    task_id = parse_id(raw_id)
    if task_id is None:
        return None
    task = db.session.get(CallTask, task_id)
    return task if task is not None and task.registration_id == registration.id else None


def _render_call(
    registration: Registration,
    form: CallOutcomeForm,
    task: CallTask | None,
    error: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    prospect = registration.prospect
    if request.method == "GET":
        form.prospect_version.data = str(prospect.version)
        form.registration_version.data = str(registration.version)
        form.task_id.data = str(task.id) if task else ""
    return render_template(
        "calls/call.html",
        registration=registration,
        prospect=prospect,
        lab=registration.lab,
        form=form,
        task=task,
        error=error,
        outcomes=CALL_OUTCOME_LABELS,
        leased_by_me=call_queue.holds_lease(prospect, current_user),
        leased_by_other=call_queue.leased_by_other(prospect, current_user),
        timeline=timeline.for_prospect(prospect.id, limit=15),
        window=call_window(),
        skip_form=SkipForm(formdata=None, task_id=str(task.id) if task else ""),
    ), status


@bp.get("/inscriptions/<int:registration_id>")
def call_page(registration_id: int) -> tuple[str, int]:
    registration = db.get_or_404(Registration, registration_id)
    task = _task(registration, request.args.get("tache"))
    return _render_call(registration, CallOutcomeForm(), task)


def _outcome_from(form: CallOutcomeForm) -> calls.Outcome:
    callback_at: datetime | None = None
    if form.callback_date.data and form.callback_time.data:
        callback_at = from_local(datetime.combine(form.callback_date.data, form.callback_time.data))
    return calls.Outcome(
        outcome=form.outcome.data or "",
        notes=form.notes.data or "",
        callback_at=callback_at,
        reason=form.reason.data or "",
        consent_sms=bool(form.consent_sms.data),
        consent_email=bool(form.consent_email.data),
        prospect_version=parse_id(form.prospect_version.data),
        registration_version=parse_id(form.registration_version.data),
    )


@bp.post("/inscriptions/<int:registration_id>")
def log_call(registration_id: int) -> Response | tuple[str, int]:
    registration = db.get_or_404(Registration, registration_id)
    form = CallOutcomeForm()
    task = _task(registration, form.task_id.data)
    if not form.validate_on_submit():
        message = " ".join(e for errors in form.errors.values() for e in errors)
        return _render_call(registration, form, task, message or "Formulaire invalide.", 400)
    try:
        calls.log_outcome(registration, current_user, _outcome_from(form), task)
    except calls.CallError as exc:
        db.session.rollback()
        return _render_call(registration, form, task, str(exc), 409)
    except StaleDataError:  # a colleague saved this person in the same instant
        db.session.rollback()
        registration = db.get_or_404(Registration, registration_id)
        return _render_call(registration, form, task, calls.STALE_MESSAGE, 409)
    flash(*calls.saved_message(registration, form.outcome.data))
    return _serve_next(registration.lab)


@bp.post("/inscriptions/<int:registration_id>/passer")
def skip(registration_id: int) -> Response:
    registration = db.get_or_404(Registration, registration_id)
    form = SkipForm()
    if not form.validate_on_submit():
        abort(400)
    calls.skip(registration, current_user, _task(registration, form.task_id.data))
    return _serve_next(registration.lab)
