"""A lab's follow-up sequences (invitation, reminders, thank you): managers only.

The lab uses the shipped default until a manager personalises it; only its own copy is
editable. Every page works without JavaScript (static/sequences.js only refreshes the SMS
counter as the manager types).
"""

from __future__ import annotations

from datetime import time
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from crm.config import ConfigError
from crm.extensions import db
from crm.forms.sequences import StepForm
from crm.messaging.encoding import GSM7_BASIC, GSM7_EXTENSION
from crm.messaging.sms import current_sender
from crm.models import Lab, Registration, SequenceStep
from crm.models.followup import SEQUENCE_KIND_LABELS, SEQUENCE_KINDS
from crm.services import sequence_editing as editing
from crm.services import sequence_preview as pages
from crm.services.sequence_editing import EditError, StaleError, StepInput
from crm.views import redirect_to_section, roles_required

bp = Blueprint("sequences", __name__, url_prefix="/labs/<int:lab_id>/sequences")

NEW_BODY = (
    'Bonjour {prenom}, l\'équipe Open Lab vous écrit au sujet du lab "{lab}". '
    "Répondre ou ne plus recevoir de messages : {lien}"
)
RACE = "Une autre étape a été ajoutée en même temps : rien n'a été enregistré, réessayez."


@bp.get("/")
@roles_required("manager", "admin")
def index(lab_id: int) -> str:
    lab = db.get_or_404(Lab, lab_id)
    cards = pages.lab_sequences(lab)
    db.session.commit()  # the shipped defaults are created on first use
    return render_template(
        "sequences/index.html", lab=lab, cards=cards, one_way_sender=_one_way_sender()
    )


@bp.post("/<kind>/personnaliser")
@roles_required("manager", "admin")
def personalise(lab_id: int, kind: str) -> Response:
    lab = db.get_or_404(Lab, lab_id)
    if kind not in SEQUENCE_KINDS:
        abort(404)
    _, moved = editing.personalise(lab, kind, current_user)
    db.session.commit()
    label = SEQUENCE_KIND_LABELS[kind]
    if moved is None:
        flash(f"La séquence « {label} » est déjà personnalisée pour cet open lab.", "info")
    else:
        flash(
            f"Séquence « {label} » personnalisée pour cet open lab : vous pouvez modifier ses "
            f"étapes. Messages déjà programmés qui utiliseront ses textes : {moved}.",
            "success",
        )
    return redirect_to_section(".index", f"sequence-{kind}", lab_id=lab.id)


@bp.route("/etapes/<int:step_id>", methods=["GET", "POST"])
@roles_required("manager", "admin")
def step(lab_id: int, step_id: int) -> tuple[str, int] | Response:
    lab = db.get_or_404(Lab, lab_id)
    found = pages.lab_step(lab, step_id) or abort(404)
    kind, own = found.sequence.kind, found.sequence.lab_id == lab.id
    registration = _registration(lab)
    form = StepForm(data=_form_data(kind, found))
    _label(form, kind)
    stale: SequenceStep | None = None
    if request.method == "POST" and not own:
        form.form_errors.append(editing.NOT_OWN)
    elif form.validate_on_submit():
        data = _input(form)
        if request.form.get("action") == "apercu":
            _attach(form, editing.errors_for(lab, kind, data, _one_way_sender()))
        else:
            try:
                version = form.version.data or ""
                changed = editing.update_step(
                    lab, found, data, version, current_user, one_way_sender=_one_way_sender()
                )
                db.session.commit()
            except EditError as exc:
                db.session.rollback()
                _attach(form, exc.errors)
                if isinstance(exc, StaleError):
                    stale = db.session.get(SequenceStep, step_id)
                    form.version.data = editing.step_version(stale) if stale else ""
            else:
                flash(_saved(found, changed), "success" if changed else "info")
                return redirect(_step_url(lab, found, registration))
    return _render_step(lab, kind, found, form, registration, stale)


@bp.route("/<kind>/etapes/nouvelle", methods=["GET", "POST"])
@roles_required("manager", "admin")
def new_step(lab_id: int, kind: str) -> tuple[str, int] | Response:
    lab = db.get_or_404(Lab, lab_id)
    if kind not in SEQUENCE_KINDS:
        abort(404)
    if editing.own_sequence(lab.id, kind) is None:
        flash(editing.NOT_OWN, "warning")
        return redirect_to_section(".index", f"sequence-{kind}", lab_id=lab.id)
    registration = _registration(lab)
    form = StepForm(data={"channel": "sms", "days": 1, "body": NEW_BODY})
    _label(form, kind)
    if form.validate_on_submit():
        data = _input(form)
        if request.form.get("action") == "apercu":
            _attach(form, editing.errors_for(lab, kind, data, _one_way_sender()))
        else:
            try:
                added = editing.add_step(
                    lab, kind, data, current_user, one_way_sender=_one_way_sender()
                )
                db.session.commit()
            except EditError as exc:
                db.session.rollback()
                _attach(form, exc.errors)
            except sa.exc.IntegrityError:
                db.session.rollback()
                form.form_errors.append(RACE)
            else:
                flash(f"Étape {added.position} ajoutée.", "success")
                return redirect(_step_url(lab, added, registration))
    return _render_step(lab, kind, None, form, registration, None)


@bp.route("/etapes/<int:step_id>/supprimer", methods=["GET", "POST"])
@roles_required("manager", "admin")
def remove_step(lab_id: int, step_id: int) -> str | Response:
    lab = db.get_or_404(Lab, lab_id)
    found = pages.lab_step(lab, step_id) or abort(404)
    kind = found.sequence.kind
    if found.sequence.lab_id != lab.id:
        flash(editing.NOT_OWN, "warning")
        return redirect_to_section(".index", f"sequence-{kind}", lab_id=lab.id)
    if request.method == "POST":
        position = found.position
        cancelled = editing.remove_step(lab, found, current_user)
        db.session.commit()
        flash(f"Étape {position} supprimée. Messages programmés annulés : {cancelled}.", "success")
        return redirect_to_section(".index", f"sequence-{kind}", lab_id=lab.id)
    return render_template(
        "sequences/remove.html",
        lab=lab,
        step=found,
        kind_label=SEQUENCE_KIND_LABELS[kind],
        timing=pages.timing_words(kind, found.offset_minutes, found.day_time),
        open_rows=pages.open_rows(lab, found),
        channel_labels=pages.CHANNEL_LABELS,
    )


def _one_way_sender() -> str | None:
    """The alphanumeric sender's name when people cannot reply to our SMS, else None."""
    try:
        sender = current_sender()
    except ConfigError:  # checked at start-up; be strict if it is wrong anyway
        return str(current_app.config.get("TWILIO_SENDER") or "expéditeur")
    return None if sender.two_way else sender.value


def _registration(lab: Lab) -> Registration | None:
    prospect_id = request.args.get("prospect", type=int)
    if "prospect" in request.args and prospect_id is None:
        abort(404)
    try:
        return pages.preview_registration(lab, prospect_id)
    except LookupError:
        abort(404)


def _form_data(kind: str, step: SequenceStep) -> dict[str, Any]:
    return {
        "channel": step.channel,
        "days": editing.days_for(kind, step.offset_minutes),
        "day_time": step.day_time,
        "subject": step.subject,
        "body": step.body,
        "version": editing.step_version(step),
    }


def _label(form: StepForm, kind: str) -> None:
    form.days.label.text = pages.DAYS_LABELS[kind]


def _input(form: StepForm) -> StepInput:
    day_time = form.day_time.data
    return editing.normalised(
        StepInput(
            channel=form.channel.data or "",
            days=int(form.days.data or 0),
            day_time=day_time.replace(second=0, microsecond=0)
            if isinstance(day_time, time)
            else None,
            subject=form.subject.data or "",
            body=form.body.data or "",
        )
    )


def _attach(form: StepForm, errors: dict[str, str]) -> None:
    for name, message in errors.items():
        field = getattr(form, name, None) if name else None
        if field is None:
            form.form_errors.append(message)
        else:
            field.errors = [*field.errors, message]


def _saved(step: SequenceStep, changed: list[str]) -> str:
    if not changed:
        return f"Étape {step.position} : aucun changement."
    return (
        f"Étape {step.position} enregistrée. Les messages déjà programmés utiliseront ce texte ; "
        "ils gardent leur date d'envoi."
    )


def _step_url(lab: Lab, step: SequenceStep, registration: Registration | None) -> str:
    prospect = registration.prospect_id if registration and "prospect" in request.args else None
    return url_for(".step", lab_id=lab.id, step_id=step.id, prospect=prospect)


def _render_step(
    lab: Lab,
    kind: str,
    step: SequenceStep | None,
    form: StepForm,
    registration: Registration | None,
    stale: SequenceStep | None,
) -> tuple[str, int]:
    if request.method == "POST" or step is None:
        channel, subject, body = form.channel.data, form.subject.data, form.body.data
    else:
        channel, subject, body = step.channel, step.subject, step.body
    shown = pages.preview(lab, registration, channel or "sms", subject or "", body or "")
    has_errors = bool(form.form_errors) or any(f.errors for f in form)
    html = render_template(
        "sequences/step.html",
        lab=lab,
        kind=kind,
        kind_label=SEQUENCE_KIND_LABELS[kind],
        step=step,
        own=step is None or step.sequence.lab_id == lab.id,
        form=form,
        preview=shown,
        people=pages.people(lab),
        chosen=registration.prospect_id if registration else None,
        one_way_sender=_one_way_sender(),
        stale=stale,
        timing=pages.timing_words,
        channel_labels=pages.CHANNEL_LABELS,
        char_label=pages.char_label,
        gsm7={"basic": "".join(sorted(GSM7_BASIC)), "ext": "".join(sorted(GSM7_EXTENSION))},
    )
    return html, 400 if has_errors else 200
