"""Blueprints, access control and error pages."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, abort, g, request
from flask_login import current_user

from crm.extensions import db, login_manager
from crm.models import User
from crm.services.normalise import format_phone
from crm.timeutil import format_local, format_local_time

F = TypeVar("F", bound=Callable[..., Any])


def public(view: F) -> F:
    """Mark a view as reachable without logging in (login, health, webhooks, signed links)."""
    view.is_public = True  # type: ignore[attr-defined]
    return view


def roles_required(*roles: str) -> Callable[[F], F]:
    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    user = db.session.get(User, int(user_id))
    return user if user is not None and user.active else None


def _require_login(app: Flask) -> Any:
    if request.endpoint is None:  # unknown URL: the 404 page says so
        return None
    view = app.view_functions.get(request.endpoint)
    if request.endpoint == "static" or getattr(view, "is_public", False):
        return None
    if current_user.is_authenticated:
        return None
    return login_manager.unauthorized()


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
    ):
        app.register_blueprint(module.bp)
    errors.register(app)
    app.before_request(lambda: _require_login(app))
    app.jinja_env.filters["local_dt"] = format_local
    app.jinja_env.filters["local_dt_time"] = format_local_time
    app.jinja_env.filters["phone"] = format_phone
    app.jinja_env.globals["service_name"] = "Open Lab CRM"
    app.jinja_env.globals["nav_items"] = nav_items

    @app.teardown_request
    def forget_request_caches(exc: BaseException | None) -> None:
        # Flask-Login and Flask-WTF cache the user and the CSRF token on `g`, which lives as
        # long as the app context; when one outlives a request (tests, scripts), the next
        # request must not inherit this one's user or token.
        g.pop("_login_user", None)
        g.pop(app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)

    @app.after_request
    def security_headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response
