"""Web defences: security headers and CSP, no inline script or style on any page, cookies,
passwords (scrypt, length, change page, sessions ended), login rate limits, personal data
masked in the logs, no secret in the repository or in configuration errors."""

from __future__ import annotations

import logging
import re
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm import create_app
from crm.config import PROJECT_ROOT, Config, ConfigError
from crm.config import testing_config as make_config
from crm.extensions import db
from crm.models import User
from crm.security import CSP, mask_personal_data
from crm.services.accounts import (
    MIN_PASSWORD_LENGTH,
    AccountError,
    authenticate,
    change_password,
    create_user,
)
from tests.conftest import PASSWORD, csrf_token, login
from tests.integration.test_roles import seed, url_of

EXPECTED_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'self'; object-src 'none'"
)

# --- Headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/connexion", "/healthz", "/static/crm.css", "/dsfr/dsfr.min.css", "/nulle-part"]
)
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)
    response.close()
    assert CSP == EXPECTED_CSP
    assert response.headers["Content-Security-Policy"] == EXPECTED_CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "camera=()" in response.headers["Permissions-Policy"]
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # not in production


def test_signed_in_pages_and_errors_carry_them_too(manager_client):
    for path in ("/", "/labs/", "/labs/999999"):
        assert manager_client.get(path).headers["Content-Security-Policy"] == EXPECTED_CSP


def test_hsts_only_in_production_over_https(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "HSTS_SECONDS", 31536000)
    value = client.get("/connexion").headers["Strict-Transport-Security"]
    assert value == "max-age=31536000; includeSubDomains"


def _production_env(monkeypatch, **extra: str) -> None:
    for key in ("CRM_HSTS_SECONDS", "CRM_SMS_BACKEND", "CRM_EMAIL_BACKEND", "SMTP_URL"):
        monkeypatch.delenv(key, raising=False)
    for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_SENDER"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CRM_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 64)
    for key, value in extra.items():
        monkeypatch.setenv(key, value)


def test_production_config_makes_cookies_secure_and_turns_hsts_on(monkeypatch):
    _production_env(monkeypatch, PUBLIC_BASE_URL="https://crm.exemple.gouv.fr")
    values = Config.from_env()
    assert values["SESSION_COOKIE_SECURE"] and values["REMEMBER_COOKIE_SECURE"]
    assert values["SESSION_COOKIE_HTTPONLY"] and values["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert values["HSTS_SECONDS"] == 365 * 24 * 3600
    _production_env(monkeypatch, PUBLIC_BASE_URL="http://intranet.local")
    assert Config.from_env()["HSTS_SECONDS"] == 0  # no HSTS on a plain HTTP address
    monkeypatch.setenv("CRM_ENV", "development")
    values = Config.from_env()
    assert not values["SESSION_COOKIE_SECURE"] and values["HSTS_SECONDS"] == 0


def test_a_configuration_error_never_prints_a_secret(monkeypatch):
    token = "f" * 32
    _production_env(
        monkeypatch,
        TWILIO_ACCOUNT_SID="AC" + "1" * 32,
        TWILIO_AUTH_TOKEN=token,
        TWILIO_SENDER="!!pas un expéditeur!!",
    )
    with pytest.raises(ConfigError) as error:
        Config.from_env()
    assert token not in str(error.value) and "s" * 64 not in str(error.value)
    monkeypatch.setenv("TWILIO_SENDER", "OpenLab")
    monkeypatch.delenv("SECRET_KEY")
    with pytest.raises(ConfigError) as error:
        Config.from_env()
    assert "SECRET_KEY est obligatoire" in str(error.value) and token not in str(error.value)


def test_the_session_cookie_is_httponly_and_samesite_lax(client, make_user):
    user = make_user("manager")
    response = login(client, user.email)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # tests run over http; production sets it (above)


# --- No inline script or style anywhere ------------------------------------------------------

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style[\s>]", re.I)
STYLE_ATTRIBUTE = re.compile(r"\sstyle=[\"']", re.I)
HANDLER_ATTRIBUTE = re.compile(r"\son[a-z]+=[\"']", re.I)


def inline_code(html: str) -> list[str]:
    found = []
    for name, pattern in (
        ("<script> inline", INLINE_SCRIPT),
        ("<style>", INLINE_STYLE),
        ("style=", STYLE_ATTRIBUTE),
        ("on…= handler", HANDLER_ATTRIBUTE),
    ):
        found += [
            f"{name}: …{html[max(m.start() - 60, 0) : m.end() + 40]}…"
            for m in pattern.finditer(html)
        ]
    return found


def test_the_inline_code_detector_works():
    assert inline_code("<script>alert(1)</script>")
    assert inline_code('<p style="color: red">') and inline_code("<button onclick='x()'>")
    assert inline_code("<style>p {}</style>")
    assert not inline_code('<script src="/static/a.js"></script><p class="x" data-on="y">')
    assert not inline_code('<script type="application/json" id="d">{}</script>')


def test_no_page_has_inline_script_style_or_handler(app, make_user):
    """Every GET page, as a manager (who sees the most) and on the public pages, with real
    objects behind the ids: the CSP forbids inline code, so none may be left."""
    ids = seed(app)
    client = app.test_client()
    assert login(client, make_user("manager").email).status_code == 302
    pages = {}
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in ("static", "assets.dsfr"):
            continue
        url = url_of(rule, ids)
        response = client.get(url)
        assert response.status_code != 500, url
        if response.mimetype == "text/html":
            pages[url] = response.get_data(as_text=True)
        response.close()
    # Pages reached through a query string or a personal link.
    with app.app_context():
        from crm.services.sequences import personal_link

        link = personal_link(ids.registration_id)
    extra = [
        f"/labs/{ids.lab_id}/accueil/?q=cam",
        f"/prospects/{ids.prospect_id}/telephone-simule",
        "/tableau-de-bord/personnes?key=total&step=invited",
        f"/tableau-de-bord/?lab={ids.lab_id}",
        f"/labs/{ids.lab_id}/relances/?onglet=envoyes",
        link.replace("http://localhost", ""),
    ]
    for url in extra:
        response = client.get(url)
        assert response.status_code == 200, url
        pages[url] = response.get_data(as_text=True)
    anonymous = app.test_client()
    for url in ("/connexion", "/nulle-part", link.replace("http://localhost", "")):
        pages[f"anonyme {url}"] = anonymous.get(url).get_data(as_text=True)
    assert len(pages) > 40
    problems = {url: found for url, html in pages.items() if (found := inline_code(html))}
    assert problems == {}


# --- Passwords and sessions ------------------------------------------------------------------


def test_passwords_are_hashed_with_scrypt_and_at_least_12_characters(app_ctx):
    assert MIN_PASSWORD_LENGTH == 12
    with pytest.raises(AccountError, match="au moins 12 caractères"):
        create_user("court@test.fr", "x" * 11, "caller")
    user = create_user("long@test.fr", "x" * 12, "caller")
    assert user.password_hash.startswith("scrypt:")
    assert authenticate("long@test.fr", "x" * 12) is not None


def test_an_old_hash_is_upgraded_to_scrypt_at_login(app_ctx):
    from werkzeug.security import generate_password_hash

    user = create_user("ancien@test.fr", "y" * 12, "caller")
    user.password_hash = generate_password_hash("y" * 12, method="pbkdf2:sha256")
    db.session.commit()
    assert authenticate("ancien@test.fr", "y" * 12) is not None
    assert db.session.get(User, user.id).password_hash.startswith("scrypt:")


def _change(client, current: str, new: str, confirm: str | None = None):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/mon-compte/mot-de-passe")
    data = {"current": current, "new": new, "confirm": new if confirm is None else confirm}
    return client.post("/mon-compte/mot-de-passe", data={**data, "csrf_token": token})


@pytest.mark.parametrize(
    "current,new,confirm,message",
    [
        (
            "mauvais-mot-de-passe",
            "nouveau-mot-de-passe",
            None,
            "Le mot de passe actuel est incorrect.",
        ),
        (PASSWORD, "court", None, "de 12 à 200 caractères"),
        (PASSWORD, "nouveau-mot-de-passe", "autre-mot-de-passe", "Les deux saisies"),
        (PASSWORD, PASSWORD, None, "différent de l'actuel"),
        ("", "", "", "Saisissez votre mot de passe actuel."),
    ],
)
def test_the_password_page_refuses_in_french(app, manager_client, current, new, confirm, message):
    response = _change(manager_client, current, new, confirm)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True).replace("&#39;", "'")
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == "manager@test.fr"))
        assert user.session_version == 1 and user.check_password(PASSWORD)


def test_a_password_change_signs_out_every_other_session(app, make_user):
    user = make_user("caller")
    mine, other = app.test_client(), app.test_client()
    for client in (mine, other):
        assert login(client, user.email).status_code == 302
        assert client.get("/").status_code == 200
    response = _change(mine, PASSWORD, "une-phrase-de-passe-neuve")
    assert response.status_code == 302
    assert "Mot de passe modifié" in mine.get("/").get_data(as_text=True)
    assert mine.get("/labs/").status_code == 200  # this session stays signed in
    gone = other.get("/labs/")
    assert gone.status_code == 302 and "/connexion" in gone.headers["Location"]
    with app.app_context():
        assert db.session.get(User, user.id).session_version == 2
    assert login(other, user.email).status_code == 400
    assert login(other, user.email, "une-phrase-de-passe-neuve").status_code == 302


def test_a_session_id_without_the_current_version_is_refused(app, client, make_user):
    user = make_user("manager")
    assert login(client, user.email).status_code == 302
    with client.session_transaction() as session:
        assert session["_user_id"] == f"{user.id}:1"
        session["_user_id"] = str(user.id)  # a session from before the versioned ids
    assert client.get("/").status_code == 302
    with client.session_transaction() as session:
        session["_user_id"] = f"{user.id}:0"
    assert client.get("/").status_code == 302
    with client.session_transaction() as session:
        session["_user_id"] = f"{user.id}:1"
    assert client.get("/").status_code == 200


def test_change_password_service_bumps_the_version(app_ctx):
    user = create_user("service@test.fr", "z" * 12, "caller")
    with pytest.raises(AccountError):
        change_password(user, "faux" * 4, "w" * 12)
    change_password(user, "z" * 12, "w" * 12)
    assert user.session_version == 2 and user.check_password("w" * 12)


# --- Login rate limits -----------------------------------------------------------------------


def _client_from(app, address: str):  # type: ignore[no-untyped-def]
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_five_failed_logins_a_minute_per_account_from_any_address(app, make_user):
    user = make_user("manager")
    for n in range(5):
        client = _client_from(app, f"198.51.100.{n + 1}")
        assert login(client, user.email, "mauvais-mot-de-passe").status_code == 400
    blocked = login(_client_from(app, "198.51.100.99"), user.email)
    assert blocked.status_code == 429
    assert "Trop de tentatives" in blocked.get_data(as_text=True)


def test_five_failed_logins_a_minute_per_address_whatever_the_account(app, make_user):
    user = make_user("manager")
    client = _client_from(app, "203.0.113.5")
    for n in range(5):
        assert login(client, f"inconnu{n}@test.fr", "mauvais-mot-de-passe").status_code == 400
    assert login(client, user.email).status_code == 429
    assert login(_client_from(app, "203.0.113.6"), user.email).status_code == 302


def test_successful_logins_do_not_count(app, make_user):
    user = make_user("manager")
    for _ in range(8):
        client = _client_from(app, "203.0.113.9")
        assert login(client, user.email).status_code == 302


def test_the_password_page_is_rate_limited_too(manager_client):
    for _ in range(5):
        assert _change(manager_client, "mauvais-mot-de-passe", "x" * 12).status_code == 400
    assert _change(manager_client, PASSWORD, "nouveau-mot-de-passe").status_code == 429


# --- Logs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("appel vers +33612345678", "appel vers +33 6 •• •• •• 78"),
        ("appel vers +33 6 12 34 56 78.", "appel vers +33 6 •• •• •• 78."),
        ("tel 06 12 34 56 78", "tel 06 •• •• •• 78"),
        ("tel 06.12.34.56.78,", "tel 06 •• •• •• 78,"),
        ("tel 0033612345678", "tel +33 6 •• •• •• 78"),
        ("UK +447911123456", "UK +••••••••••56"),
        ("mail camille.martin@example.fr ok", "mail c•••@example.fr ok"),
        ("lab 42, 2026-03-03 10:00, id 123456789", "lab 42, 2026-03-03 10:00, id 123456789"),
    ],
)
def test_personal_data_is_masked(text, expected):
    assert mask_personal_data(text) == expected


def test_a_log_line_with_a_phone_is_masked(app, caplog):
    caplog.set_level(logging.INFO)
    log = logging.getLogger("crm.test")
    log.info("SMS envoyé à %s (%s)", "+33612345678", "camille@example.fr")
    try:
        raise ValueError("numéro refusé : 0612345678")
    except ValueError:
        log.exception("échec pour %s", "+33 7 98 76 54 32")
    text = caplog.text
    assert "+33612345678" not in text and "camille@example.fr" not in text
    assert "0612345678" not in text and "98 76 54 32" not in text
    assert "SMS envoyé à +33 6 •• •• •• 78 (c•••@example.fr)" in text
    assert "+33 7 •• •• •• 32" in text and "06 •• •• •• 78" in text
    assert all(r.args == () for r in caplog.records)


def test_an_unexpected_error_is_logged_masked(app, manager_client, caplog, monkeypatch):
    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("insert failed for +33612345678")

    monkeypatch.setattr("crm.views.labs.render_template", boom)
    caplog.set_level(logging.ERROR)
    assert manager_client.get("/labs/").status_code == 500
    assert "+33612345678" not in caplog.text and "+33 6 •• •• •• 78" in caplog.text


# --- Secrets ---------------------------------------------------------------------------------


def test_no_secret_is_committed():
    files = subprocess.run(
        ["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert ".env" not in files and not any(f.startswith("instance/") for f in files)
    patterns = {
        "Twilio account": re.compile(r"\bAC[0-9a-f]{32}\b"),
        "Twilio API key": re.compile(r"\bSK[0-9a-f]{32}\b"),
        "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
        "SECRET_KEY value": re.compile(r"SECRET_KEY\s*[=:]\s*['\"]?[0-9a-f]{32,}"),
    }
    # A URL with a password, outside the tests' local servers and the documented placeholders.
    url_password = re.compile(r"://[^/\s:@]+:(?!\$|password@|mot-de-passe@)[^@\s/]{6,}@")
    found = []
    for name in files:
        path = PROJECT_ROOT / name
        if not path.is_file() or path.suffix in {".png", ".svg", ".ico", ".woff", ".woff2"}:
            continue
        text = path.read_text(errors="ignore")
        found += [f"{name}: {label}" for label, p in patterns.items() if p.search(text)]
        if not name.startswith("tests/") and url_password.search(text):
            found.append(f"{name}: URL with password")
    assert found == []


def test_the_app_refuses_to_start_without_a_secret_in_production(monkeypatch, tmp_path):
    _production_env(monkeypatch)
    monkeypatch.delenv("SECRET_KEY")
    with pytest.raises(ConfigError):
        create_app()
    assert isinstance(make_config(None, None, Path(tmp_path))["SECRET_KEY"], str)
