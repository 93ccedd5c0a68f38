"""Prospects: search list, manual entry, the person's page and its small forms, edit."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from crm.extensions import db
from crm.forms.labs import options
from crm.forms.prospects import (
    PermissionForm,
    ProspectCreateForm,
    ProspectForm,
    QualificationForm,
    RegisterForm,
    TransitionForm,
)
from crm.models import Lab, Prospect, Registration, Source
from crm.models.prospect import CHANNEL_LABELS, CONSENT_METHOD_LABELS, QUALIFICATION_LABELS
from crm.models.registration import REGISTRATION_STATUS_LABELS
from crm.services import audit
from crm.services.normalise import format_phone
from crm.services.prospect_records import (
    ContactTaken,
    ProspectFilters,
    consents_of,
    labs_open_for,
    prospect_page,
    registrations_of,
    update_prospect,
)
from crm.services.prospects import ProspectError, ProspectInput, qualify, save, set_permission
from crm.services.registrations import (
    TRANSITIONS,
    TransitionError,
    change_status_by_hand,
    manual_targets,
    register,
)
from crm.services.timeline import for_prospect
from crm.timeutil import format_local, utcnow
from crm.views import redirect_to_section

bp = Blueprint("prospects", __name__, url_prefix="/prospects")
Page = str | tuple[str, int] | Response
STALE = (
    "Cette fiche vient d'être modifiée par quelqu'un d'autre : rien n'a été enregistré. "
    "Vérifiez la fiche à jour avant de recommencer."
)


@bp.get("/")
def index() -> str:
    filters = ProspectFilters.from_args(request.args)
    page = prospect_page(
        filters,
        request.args.get("page", 1, type=int) or 1,
        current_app.config["PROSPECTS_PER_PAGE"],
    )
    return render_template(
        "prospects/index.html",
        filters=filters,
        page=page,
        sources=db.session.scalars(sa.select(Source).order_by(sa.func.lower(Source.name))).all(),
        labs=db.session.scalars(sa.select(Lab).order_by(Lab.starts_at.desc())).all(),
        qualification_labels=QUALIFICATION_LABELS,
        status_labels=REGISTRATION_STATUS_LABELS,
    )


@bp.route("/nouveau", methods=["GET", "POST"])
def create() -> Page:
    form = ProspectCreateForm()
    form.source.choices = _source_choices()
    if form.validate_on_submit():
        source = db.get_or_404(Source, form.source.data)
        try:
            prospect, created = save(_prospect_input(form), source, current_user)
            if created and form.qualification.data != "unknown":
                qualify(prospect, form.qualification.data, form.reason.data or "", current_user)
            db.session.commit()
        except (ProspectError, sa.exc.IntegrityError) as exc:
            db.session.rollback()
            form.form_errors.append(_message(exc))
        else:
            if created:
                flash(f"Fiche de {prospect.full_name} créée.", "success")
            else:
                flash("Cette personne existe déjà : fiche complétée.", "info")
            return redirect(url_for(".show", prospect_id=prospect.id))
    return _render_form(form, None)


@bp.route("/<int:prospect_id>/modifier", methods=["GET", "POST"])
def edit(prospect_id: int) -> Page:
    prospect = db.get_or_404(Prospect, prospect_id)
    form = ProspectForm(data=_prospect_data(prospect))
    form.source.choices = _source_choices()
    if form.validate_on_submit():
        source = db.get_or_404(Source, form.source.data)
        try:
            if form.version.data and form.version.data != str(prospect.version):
                raise StaleDataError()
            changed = update_prospect(prospect, _prospect_input(form), source, current_user)
            if changed:
                audit.record("prospect.changed", "prospect", prospect.id, {"champs": changed})
            db.session.commit()
        except StaleDataError:
            db.session.rollback()
            flash(STALE, "error")
            return redirect(url_for(".show", prospect_id=prospect_id))
        except ContactTaken as exc:
            db.session.rollback()
            field = form.phone if exc.field == "phone" else form.email
            field.errors = [*field.errors, str(exc)]
        except (ProspectError, sa.exc.IntegrityError) as exc:
            db.session.rollback()
            form.form_errors.append(_message(exc))
        else:
            flash("Fiche mise à jour." if changed else "Aucune modification.", "success")
            return redirect(url_for(".show", prospect_id=prospect.id))
    return _render_form(form, prospect)


@bp.get("/<int:prospect_id>")
def show(prospect_id: int) -> Page:
    prospect = db.get_or_404(Prospect, prospect_id)
    audit.record("prospect.viewed", "prospect", prospect.id)
    db.session.commit()
    return _render_show(prospect)


@bp.post("/<int:prospect_id>/qualification")
def qualification(prospect_id: int) -> Page:
    prospect = db.get_or_404(Prospect, prospect_id)
    form = QualificationForm(prefix="qualif")
    if form.validate():
        try:
            qualify(prospect, form.qualification.data, form.reason.data or "", current_user)
            db.session.commit()
        except ProspectError as exc:
            db.session.rollback()
            form.reason.errors = [*form.reason.errors, str(exc)]
        except StaleDataError:
            db.session.rollback()
            flash(STALE, "error")
            return _back(prospect_id, "qualification")
        else:
            flash(f"Qualification enregistrée : {prospect.qualification_label}.", "success")
            return _back(prospect, "qualification")
    return _render_show(prospect, qualification_form=form)


@bp.post("/<int:prospect_id>/permissions")
def permission(prospect_id: int) -> Page:
    prospect = db.get_or_404(Prospect, prospect_id)
    form = PermissionForm(prefix="perm")
    if not form.validate():
        return _render_show(prospect, permission_form=form)
    granted = form.granted.data == "1"
    channel = CHANNEL_LABELS[form.channel.data]
    state = "accordée" if granted else "retirée"
    try:
        consent = set_permission(
            prospect,
            form.channel.data,
            granted,
            form.method.data,
            current_user,
            from_person=form.from_person.data == "1",
            basis=(form.basis.data or "").strip(),
        )
        if consent is not None:
            detail = {"autorisation": form.channel.data, "accordee": granted}
            audit.record("prospect.changed", "prospect", prospect.id, detail)
        db.session.commit()
    except (ProspectError, StaleDataError) as exc:
        db.session.rollback()
        flash(str(exc) if isinstance(exc, ProspectError) else STALE, "error")
    else:
        if consent is None:
            flash(f"Aucun changement : la permission {channel} était déjà {state}.", "info")
        else:
            flash(f"Permission {channel} {state} et enregistrée dans le registre.", "success")
    return _back(prospect, "permissions")


@bp.post("/<int:prospect_id>/inscriptions")
def registration(prospect_id: int) -> Page:
    prospect = db.get_or_404(Prospect, prospect_id)
    form = RegisterForm(prefix="inscr")
    # A lab registered since the page was shown is not an error: register() says "already".
    form.lab.choices = _lab_choices(prospect, include_registered=True)
    if not form.validate():
        form.lab.choices = _lab_choices(prospect)
        return _render_show(prospect, register_form=form)
    lab = db.get_or_404(Lab, form.lab.data)
    try:
        _, created = register(prospect, lab, current_user, (form.reason.data or "").strip())
        db.session.commit()
    except sa.exc.IntegrityError:
        db.session.rollback()
        created = False
    if created:
        flash(f"{prospect.full_name} est inscrit·e à « {lab.title} » (à contacter).", "success")
    else:
        flash(f"{prospect.full_name} était déjà inscrit·e à « {lab.title} ».", "info")
    return _back(prospect, "inscriptions")


@bp.post("/<int:prospect_id>/inscriptions/<int:registration_id>/statut")
def registration_status(prospect_id: int, registration_id: int) -> Page:
    prospect = db.get_or_404(Prospect, prospect_id)
    reg = db.get_or_404(Registration, registration_id)
    if reg.prospect_id != prospect.id:
        abort(404)
    form = TransitionForm(prefix=f"reg-{reg.id}")  # every status: the service judges the move
    if not form.validate():
        _legal_choices(form, reg)
        return _render_show(prospect, transition_forms={reg.id: form})
    if form.current.data and form.current.data != reg.status:
        flash(
            "Le statut de cette inscription a changé entre-temps : il est maintenant "
            f"« {reg.status_label} ». Vérifiez avant de recommencer.",
            "error",
        )
        return _back(prospect, "inscriptions")
    try:
        reason = (form.reason.data or "").strip()
        change_status_by_hand(reg, form.status.data, current_user, reason)
        db.session.commit()
    except (TransitionError, StaleDataError) as exc:
        db.session.rollback()
        flash(str(exc) if isinstance(exc, TransitionError) else STALE, "error")
    else:
        flash(f"Inscription à « {reg.lab.title} » : {reg.status_label}.", "success")
    return _back(prospect, "inscriptions")


def _render_show(
    prospect: Prospect,
    qualification_form: QualificationForm | None = None,
    permission_form: PermissionForm | None = None,
    register_form: RegisterForm | None = None,
    transition_forms: dict[int, TransitionForm] | None = None,
) -> Page:
    """The person's page; a form given here was submitted with errors (status 400)."""
    submitted = any((qualification_form, permission_form, register_form, transition_forms))
    registrations = registrations_of(prospect)
    forms = dict(transition_forms or {})
    for reg in registrations:
        if reg.id not in forms and TRANSITIONS[reg.status]:
            forms[reg.id] = TransitionForm(
                formdata=None, prefix=f"reg-{reg.id}", data={"current": reg.status}
            )
            _legal_choices(forms[reg.id], reg)
    if qualification_form is None:
        qualification_form = QualificationForm(
            formdata=None,
            prefix="qualif",
            data={
                "qualification": prospect.qualification,
                "reason": prospect.disqualification_reason,
            },
        )
    if register_form is None:
        register_form = RegisterForm(formdata=None, prefix="inscr")
        register_form.lab.choices = _lab_choices(prospect)
    html = render_template(
        "prospects/show.html",
        prospect=prospect,
        registrations=registrations,
        transition_forms=forms,
        qualification_form=qualification_form,
        permission_form=permission_form or PermissionForm(formdata=None, prefix="perm"),
        register_form=register_form,
        consents=consents_of(prospect),
        timeline=for_prospect(prospect.id),
        channel_labels=CHANNEL_LABELS,
        method_labels=CONSENT_METHOD_LABELS,
    )
    return (html, 400) if submitted else html


def _legal_choices(form: TransitionForm, registration: Registration) -> None:
    targets = manual_targets(registration, utcnow())
    legal = [(s, REGISTRATION_STATUS_LABELS[s]) for s in targets]
    form.status.choices = options([("", "Choisir le nouveau statut"), *legal])


def _lab_choices(prospect: Prospect, include_registered: bool = False) -> list[SelectChoice]:
    labs = labs_open_for(prospect, include_registered)
    return options((lab.id, f"{lab.title} — {format_local(lab.starts_at)}") for lab in labs)


def _source_choices() -> list[SelectChoice]:
    sources = db.session.scalars(sa.select(Source).order_by(sa.func.lower(Source.name)))
    return options([("", "Choisir une source"), *((s.id, s.name) for s in sources)])


def _prospect_input(form: ProspectForm) -> ProspectInput:
    return ProspectInput.from_mapping(
        {name: getattr(form, name).data for name in ProspectInput.__dataclass_fields__}
    )


def _prospect_data(prospect: Prospect) -> dict[str, Any]:
    return {
        "first_name": prospect.first_name,
        "last_name": prospect.last_name,
        "phone": format_phone(prospect.phone) if prospect.phone else prospect.phone_raw or "",
        "email": prospect.email or "",
        "organisation": prospect.organisation,
        "profile": prospect.profile,
        "notes": prospect.notes,
        "source": prospect.source_id,
        "version": str(prospect.version),
    }


def _message(exc: Exception) -> str:
    if isinstance(exc, ProspectError):
        return str(exc)
    return "Ce contact vient d'être enregistré par ailleurs : recherchez-le avant de recommencer."


def _back(prospect: Prospect | int, anchor: str) -> Response:
    prospect_id = prospect if isinstance(prospect, int) else prospect.id
    return redirect_to_section(".show", anchor, prospect_id=prospect_id)


def _render_form(form: FlaskForm, prospect: Prospect | None) -> tuple[str, int]:
    has_errors = bool(form.form_errors) or any(f.errors for f in form)
    return render_template("prospects/form.html", form=form, prospect=prospect), (
        400 if has_errors else 200
    )
