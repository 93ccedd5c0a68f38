"""Blueprints, access control and error pages."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, abort, before_render_template, g, redirect, request, session, url_for
from flask_login import current_user, login_user
from flask_wtf import FlaskForm
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.wrappers import Response
from wtforms import Field

from crm.extensions import db, login_manager
from crm.models import User
from crm.services.normalise import format_phone, parse_id
from crm.timeutil import format_local, format_local_time

F = TypeVar("F", bound=Callable[..., Any])


def redirect_to_section(endpoint: str, anchor: str, **values: Any) -> Response:
    """Redirect to a section of a page (`#anchor`), unless an error or a warning was just
    flashed: messages are shown at the top of the page, which the anchor would scroll past."""
    flashed = session.get("_flashes") or []
    if any(category in ("error", "warning") for category, _ in flashed):
        return redirect(url_for(endpoint, **values))
    return redirect(url_for(endpoint, _anchor=anchor, **values))


def fields_in_error(form: FlaskForm) -> list[Field]:
    """The fields whose errors a person can see and fix (not the hidden ones): listed by the
    form_errors macro, and what makes a page's title say "Erreur"."""
    return [f for f in form if f.errors and f.type not in ("CSRFTokenField", "HiddenField")]


def shows_form_errors(context: dict[str, Any]) -> bool:
    """Whether the page being rendered shows a form's errors, so that its title can say so."""
    forms = [v for v in context.values() if isinstance(v, FlaskForm)]
    for value in context.values():  # a form per row (a prospect's registrations)
        if isinstance(value, dict):
            forms += [v for v in value.values() if isinstance(v, FlaskForm)]
    return any(form.form_errors or fields_in_error(form) for form in forms)


def public(view: F) -> F:
    """Mark a view as reachable without logging in (login, health, webhooks, signed links)."""
    view.is_public = True  # type: ignore[attr-defined]
    return view


def roles_required(*roles: str) -> Callable[[F], F]:
    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if getattr(current_user, "role", None) not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def session_user_id(user: User) -> str:
    """The user id kept in the session: "<id>:<session_version>". A password change bumps the
    version, so every session opened before it no longer loads its user."""
    return f"{user.id}:{user.session_version or 1}"


def log_in(user: User) -> None:
    """Flask-Login's login_user, with the versioned id in the session."""
    login_user(user)
    session["_user_id"] = session_user_id(user)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The active user of this session, or None when the id is stale or malformed (a plain
    id from before versioning, a password changed since: the person logs in again)."""
    raw_id, sep, raw_version = (user_id or "").partition(":")
    number, version = parse_id(raw_id), parse_id(raw_version)
    if not sep or number is None or version is None:
        return None
    user = db.session.get(User, number)
    if user is None or not user.active or (user.session_version or 1) != version:
        return None
    return user


def _require_login(app: Flask) -> Any:
    if request.endpoint is None:  # unknown URL: the 404 page says so
        return None
    view = app.view_functions.get(request.endpoint)
    if request.endpoint == "static" or getattr(view, "is_public", False):
        return None
    if current_user.is_authenticated:
        return None
    return login_manager.unauthorized()


# Twilio signs what it posts, NUL characters included: the webhooks check the signature on
# the raw form, then drop them themselves (crm.services.replies, receipts).
KEEPS_RAW_INPUT = frozenset({"webhooks.inbound_sms", "webhooks.delivery_status"})


def drop_nul_characters() -> None:
    """No one types a NUL character and PostgreSQL text cannot hold one (a write would fail
    with the person's input lost): dropped from the query string and the form, names and
    values, before any view reads them."""
    if request.endpoint in KEEPS_RAW_INPUT:
        return
    for name in ("args", "form"):
        data = getattr(request, name)
        pairs = list(data.items(multi=True))
        if any("\x00" in key or "\x00" in value for key, value in pairs):
            clean = [(key.replace("\x00", ""), value.replace("\x00", "")) for key, value in pairs]
            setattr(request, name, ImmutableMultiDict(clean))  # werkzeug's cached_property


def nav_items(user: User) -> list[tuple[str, str]]:
    """The main navigation for this user's role."""
    items = [("main.home", "Accueil"), ("calls.workspace", "Appels")]
    items += [("labs.index", "Open labs"), ("prospects.index", "Prospects")]
    items.append(("dashboard.index", "Tableau de bord"))
    if user.is_manager:
        items.append(("sources.index", "Sources"))
        items.append(("imports.new", "Importer"))
        items.append(("outbox.index", "Messages envoyés"))
        items.append(("replies.index", "Réponses SMS"))
        items.append(("privacy.retention_list", "Conservation"))
        items.append(("privacy.audit_log", "Journal d'accès"))
    return items


def register_views(app: Flask) -> None:
    from crm.views import (
        assets,
        auth,
        calls,
        checkin,
        dashboard,
        errors,
        groups,
        health,
        imports,
        lab_day,
        lab_sending,
        labs,
        legal,
        links,
        main,
        outbox,
        privacy,
        prospects,
        replies,
        sequences,
        sources,
        webhooks,
    )

    modules = (assets, auth, calls, health, main, outbox, labs, lab_sending, sequences)
    lab_day_modules = (lab_day, checkin, groups)
    for module in (
        *modules,
        *lab_day_modules,
        prospects,
        replies,
        sources,
        imports,
        webhooks,
        links,
        dashboard,
        privacy,
        legal,
    ):
        app.register_blueprint(module.bp)
    errors.register(app)
    app.before_request(lambda: _require_login(app))
    app.before_request(drop_nul_characters)
    app.jinja_env.filters["local_dt"] = format_local
    app.jinja_env.filters["local_dt_time"] = format_local_time
    app.jinja_env.filters["phone"] = format_phone
    app.jinja_env.globals["service_name"] = "Open Lab CRM"
    app.jinja_env.globals["nav_items"] = nav_items
    app.jinja_env.globals["fields_in_error"] = fields_in_error
    app.jinja_env.globals["simulator_available"] = replies.simulator_available

    @before_render_template.connect_via(app)
    def flag_form_errors(_app: Flask, template: Any, context: dict[str, Any], **_: Any) -> None:
        # RGAA 8.6: a page shown again with errors says so in its title, read first.
        context.setdefault("page_has_errors", shows_form_errors(context))

    @app.teardown_request
    def forget_request_caches(exc: BaseException | None) -> None:
        # Flask-Login and Flask-WTF cache the user and the CSRF token on `g`, which lives as
        # long as the app context; when one outlives a request (tests, scripts), the next
        # request must not inherit this one's user or token.
        g.pop("_login_user", None)
        g.pop(app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)

    # The security headers are set for every response by crm.security (create_app).
