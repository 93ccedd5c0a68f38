from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_limiter.util import get_remote_address
from flask_login import current_user, logout_user
from werkzeug.wrappers import Response

from crm.extensions import limiter
from crm.forms.auth import LoginForm, PasswordChangeForm
from crm.services.accounts import AccountError, authenticate, change_password
from crm.views import log_in, public

bp = Blueprint("auth", __name__)
# Failed attempts only (a successful login does not count): per account, from any address,
# and per address, whatever the account (one address spraying many accounts).
LOGIN_ATTEMPTS = "5 per minute"
LOGIN_ATTEMPTS_PER_ADDRESS = "5 per minute"
PASSWORD_CHANGE_ATTEMPTS = "5 per minute"


def _safe_next(target: str | None) -> str:
    """Only local paths: never redirect to another site after login."""
    if not target or any(ord(c) < 32 or c == "\\" for c in target):
        return url_for("main.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("main.home")
    return target


def _account_key() -> str:
    """The account the attempt is about, whatever the address it comes from."""
    email = (request.form.get("email") or "").strip().lower()[:254]
    return f"compte|{email}"


def _address_key() -> str:
    return f"adresse|{get_remote_address()}"


def _user_key() -> str:
    return f"utilisateur|{current_user.get_id()}"


def _failed(response: Response) -> bool:
    """Only refused attempts count: a login or a change that worked redirects."""
    return response.status_code != 302


@bp.route("/connexion", methods=["GET", "POST"])
@public
@limiter.limit(LOGIN_ATTEMPTS, methods=["POST"], key_func=_account_key, deduct_when=_failed)
@limiter.limit(
    LOGIN_ATTEMPTS_PER_ADDRESS, methods=["POST"], key_func=_address_key, deduct_when=_failed
)
def login() -> str | Response | tuple[str, int]:
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        user = authenticate(form.email.data or "", form.password.data or "")
        if user is not None:
            log_in(user)
            return redirect(_safe_next(request.args.get("next")))
        error = "Adresse e-mail ou mot de passe incorrect."
    status = 200 if error is None and not form.errors else 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form, error=error), status


@bp.post("/deconnexion")
def logout() -> Response:
    logout_user()
    flash("Vous êtes déconnecté·e.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/mon-compte/mot-de-passe", methods=["GET", "POST"])
@limiter.limit(PASSWORD_CHANGE_ATTEMPTS, methods=["POST"], key_func=_user_key, deduct_when=_failed)
def password() -> str | Response | tuple[str, int]:
    """Change one's password: every other session of the account is signed out."""
    form = PasswordChangeForm()
    user = current_user._get_current_object()  # type: ignore[attr-defined]
    if form.validate_on_submit():
        try:
            change_password(user, form.current.data or "", form.new.data or "")
        except AccountError as exc:
            target = form.current if "actuel" in str(exc) else form.new
            target.errors = [*target.errors, str(exc)]
        else:
            log_in(user)  # this session carries the new version; the others end
            flash(
                "Mot de passe modifié. Vos autres sessions ouvertes sont déconnectées.",
                "success",
            )
            return redirect(url_for("main.home"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/password.html", form=form), status
