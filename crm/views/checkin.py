"""Check-in on the lab day: a phone-first page that works without JavaScript (plain GET search,
one POST form per person); a few lines of script swap in the results fragment as one types
and after each tap. Any logged-in user (caller or manager) may use it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.wrappers import Response

from crm.extensions import db
from crm.forms.checkin import TapForm, WalkInForm
from crm.models import Lab, Registration
from crm.services import checkin, registrations
from crm.services.prospects import ProspectError
from crm.timeutil import to_local, utcnow

bp = Blueprint("checkin", __name__, url_prefix="/labs/<int:lab_id>/accueil")
Page = str | tuple[str, int] | Response
PER_PAGE = 30
RETRY = "Quelqu'un vient d'enregistrer cette personne en même temps : vérifiez la liste."
TAKEN = "Ce contact vient d'être enregistré par ailleurs : recherchez la personne et réessayez."


def _query(raw: str | None) -> str:
    return (raw or "").strip()[:200]


def _live(lab: Lab, q: str, message: str | None = None, level: str = "info") -> dict[str, Any]:
    """What checkin/_live.html shows: the count, the announcement and the list."""
    return {
        "lab": lab,
        "q": q,
        "found": checkin.search(lab, q, PER_PAGE),
        "counts": checkin.counts(lab),
        "message": message,
        "level": level,
    }


@bp.get("/")
def page(lab_id: int) -> str:
    lab = db.get_or_404(Lab, lab_id)
    now = utcnow()
    starts, today = to_local(lab.starts_at), to_local(now)
    is_today = starts is not None and today is not None and starts.date() == today.date()
    live = _live(lab, _query(request.args.get("q")))
    started = registrations.lab_day_begun(lab, now)
    return render_template("checkin/page.html", today=is_today, started=started, **live)


@bp.get("/resultats")
def results(lab_id: int) -> str:
    """The fragment fetched while typing: small, no page around it."""
    lab = db.get_or_404(Lab, lab_id)
    return render_template("checkin/_live.html", **_live(lab, _query(request.args.get("q"))))


@bp.post("/<int:registration_id>/present")
def mark_present(lab_id: int, registration_id: int) -> Page:
    return _tap(lab_id, registration_id, checkin.check_in)


@bp.post("/<int:registration_id>/annuler")
def undo(lab_id: int, registration_id: int) -> Page:
    return _tap(lab_id, registration_id, checkin.undo)


def _tap(lab_id: int, registration_id: int, action: checkin.Action) -> Page:
    lab = db.get_or_404(Lab, lab_id)
    registration = db.get_or_404(Registration, registration_id)
    if registration.lab_id != lab.id:
        abort(404)
    form = TapForm()
    if not form.validate_on_submit():
        abort(400)
    q = _query(form.q.data)
    try:
        result = action(registration, current_user)
        db.session.commit()
    except checkin.CheckInError as exc:
        db.session.rollback()
        return _answer(lab, q, str(exc), "error")
    except StaleDataError:  # two desks tapped the same person: the other tap won
        db.session.rollback()
        registration = db.get_or_404(Registration, registration_id)
        if action is checkin.check_in and registration.status == "attended":
            return _answer(lab, q, checkin.already_message(registration), "info")
        return _answer(lab, q, RETRY, "error")
    return _answer(lab, q, result.message, "success" if result.changed else "info")


def _answer(lab: Lab, q: str, message: str, level: str) -> Page:
    """The fragment for the script; without it, a message and the page again (PRG)."""
    if request.headers.get("X-Requested-With") == "fetch":
        html = render_template("checkin/_live.html", **_live(lab, q, message, level))
        return html, 409 if level == "error" else 200
    flash(message, level)
    return redirect(url_for(".page", lab_id=lab.id, q=q or None))


@bp.route("/sur-place", methods=["GET", "POST"])
def walk_in(lab_id: int) -> Page:
    lab = db.get_or_404(Lab, lab_id)
    form = WalkInForm()
    if form.validate_on_submit():
        typed = ("first_name", "last_name", "organisation", "phone", "email")
        data = checkin.WalkIn(
            **{name: getattr(form, name).data or "" for name in typed}, consents=form.consents()
        )
        try:
            result = checkin.walk_in(lab, data, current_user)
            db.session.commit()
        except (checkin.CheckInError, ProspectError) as exc:
            db.session.rollback()
            field = getattr(form, getattr(exc, "field", None) or "", None)
            if field is not None:
                field.errors = [*field.errors, str(exc)]
            else:
                form.form_errors.append(str(exc))
        except (sa.exc.IntegrityError, StaleDataError):
            db.session.rollback()
            form.form_errors.append(TAKEN)
        else:
            flash(_walk_in_message(result), "success" if result.check.changed else "info")
            name = result.check.registration.prospect.last_name
            return redirect(url_for(".page", lab_id=lab.id, q=name or None))
    has_errors = bool(form.form_errors) or any(f.errors for f in form)
    html = render_template("checkin/walk_in.html", lab=lab, form=form)
    return (html, 400) if has_errors else html


def _walk_in_message(result: checkin.WalkInResult) -> str:
    if not result.check.changed:
        return result.check.message
    if result.prospect_created:
        return f"Inscription sur place : {result.check.message}"
    return f"Cette personne était déjà connue : fiche retrouvée. {result.check.message}"
