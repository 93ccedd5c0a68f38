from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from crm.extensions import limiter
from crm.forms.auth import LoginForm
from crm.services.accounts import authenticate
from crm.views import public

bp = Blueprint("auth", __name__)
LOGIN_ATTEMPTS = "10 per 5 minutes"
LOGIN_ATTEMPTS_PER_ADDRESS = "50 per 5 minutes"


def _safe_next(target: str | None) -> str:
    """Only local paths: never redirect to another site after login."""
    if not target or any(ord(c) < 32 or c == "\\" for c in target):
        return url_for("main.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("main.home")
    return target


def _login_key() -> str:
    """Attempts are counted per address and per account, so one cannot guess another's."""
    email = (request.form.get("email") or "").strip().lower()[:254]
    return f"{get_remote_address()}|{email}"


@bp.route("/connexion", methods=["GET", "POST"])
@public
@limiter.limit(LOGIN_ATTEMPTS, methods=["POST"], key_func=_login_key)
@limiter.limit(LOGIN_ATTEMPTS_PER_ADDRESS, methods=["POST"])
def login() -> str | Response:
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        user = authenticate(form.email.data or "", form.password.data or "")
        if user is not None:
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        error = "Adresse e-mail ou mot de passe incorrect."
    status = 200 if error is None and not form.errors else 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form, error=error), status


@bp.post("/deconnexion")
def logout() -> Response:
    logout_user()
    flash("Vous êtes déconnecté·e.", "info")
    return redirect(url_for("auth.login"))
