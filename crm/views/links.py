"""The personal link page (/r/<token>): public, for the people invited, on a phone.

A GET never changes anything (link scanners and mail filters open links): the answers are
POSTs carrying the CSRF token of the anonymous session. The signed token is the only proof
of who answers; a tampered, expired or used link gets a page that says so and changes
nothing (except that withdrawing consent stays possible on an authentic link, see
crm.services.personal_links.LinkState.can_stop).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from sqlalchemy.orm.exc import StaleDataError

from crm.extensions import csrf, db
from crm.services import personal_links
from crm.services.personal_links import Action, LinkState
from crm.services.registrations import TransitionError
from crm.views import public

log = logging.getLogger(__name__)
bp = Blueprint("links", __name__, url_prefix="/r")

CLOSED_STATUS = {"invalid": 404, "expired": 410, "used": 410}
ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"


def _closed(token: str, state: LinkState, refused: bool = False) -> tuple[str, int]:
    """The page of a link that cannot be answered any more (or never could), or of an
    answer the registration cannot take (409)."""
    prospect = state.registration.prospect if state.registration else None
    page = render_template(
        "links/closed.html",
        token=token,
        state=state,
        refused=refused,
        stop_available=prospect is not None and personal_links.contactable(prospect),
    )
    return page, 409 if refused else CLOSED_STATUS.get(state.status, 400)


@bp.get("/<token>")
@public
def show(token: str) -> tuple[str, int] | str:
    state = personal_links.registration_for(token)
    if not state.valid:
        return _closed(token, state)
    assert state.registration is not None
    return render_template(
        "links/page.html",
        token=token,
        lab=personal_links.page_for(state.registration),
    )


@bp.get("/<token>/lab.ics")
@public
def calendar(token: str) -> Response | tuple[str, int]:
    state = personal_links.registration_for(token)
    if not state.valid:
        return _closed(token, state)
    assert state.registration is not None
    return Response(
        personal_links.calendar_for(state.registration),
        mimetype="text/calendar",
        headers={"Content-Disposition": 'attachment; filename="open-lab.ics"'},
    )


def _act(token: str, action: Action) -> Response | tuple[str, int]:
    state = personal_links.registration_for(token)
    allowed = state.can_stop if action == "stop" else state.valid
    if not allowed:
        return _closed(token, state)
    try:
        outcome = personal_links.answer(state, action)
        db.session.commit()
    except (TransitionError, StaleDataError) as error:
        # Nothing is kept: the person is sent to the team rather than shown a status name.
        db.session.rollback()
        log.info("personal link %s refused: %s", action, error)
        return _closed(token, state, refused=True)
    flash(outcome.message, "success" if outcome.changed else "info")
    return redirect(url_for("links.show", token=token), code=303)


@bp.post("/<token>/confirmer")
@public
def confirm(token: str) -> Response | tuple[str, int]:
    return _act(token, "confirm")


@bp.post("/<token>/decliner")
@public
def decline(token: str) -> Response | tuple[str, int]:
    return _act(token, "decline")


@bp.post("/<token>/ne-plus-contacter")
@public
def stop(token: str) -> Response | tuple[str, int]:
    return _act(token, "stop")


@bp.post("/<token>")
@public
@csrf.exempt  # RFC 8058: the mail provider posts with no session; the signed token is the proof
def one_click_unsubscribe(token: str) -> Response:
    """List-Unsubscribe-Post target: `List-Unsubscribe=One-Click` withdraws e-mail only."""
    if request.form.get(ONE_CLICK_FIELD) != ONE_CLICK_VALUE:
        abort(400)
    state = personal_links.registration_for(token)
    if not state.can_stop:
        return _text("Lien invalide : aucune désinscription enregistrée.", 404)
    changed = personal_links.unsubscribe_email(state)
    db.session.commit()
    if changed:
        return _text("Désinscription enregistrée : vous ne recevrez plus nos e-mails.", 200)
    return _text("Vous étiez déjà désinscrit·e : vous ne recevez plus nos e-mails.", 200)


def _text(body: str, status: int) -> Response:
    return Response(body + "\n", status=status, mimetype="text/plain")


@bp.after_request
def private_page(response: Response) -> Response:
    # Personal data and a CSRF token: never stored by a shared cache, never indexed.
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


@bp.errorhandler(CSRFError)
def expired_form(error: CSRFError) -> tuple[str, int]:
    # The person's session cookie is gone (another browser, cookies cleared): nothing was
    # recorded; the page, opened again, gives a fresh form.
    token = (request.view_args or {}).get("token", "")
    return render_template("links/form_expired.html", token=token), 400
