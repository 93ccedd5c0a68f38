"""One configuration, read from the environment (and an optional .env file)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from dotenv import load_dotenv

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = Path(os.environ.get("CRM_INSTANCE_DIR", PROJECT_ROOT / "instance"))


class ConfigError(RuntimeError):
    """The configuration cannot run: the message says what to set."""


def _dev_secret_key(instance_dir: Path) -> str:
    """Generate the development secret once and keep it under instance/."""
    path = instance_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


class Config:
    TESTING = False
    CRM_ENV = "development"
    INSTANCE_DIR = INSTANCE_DIR
    SQLALCHEMY_DATABASE_URI = f"sqlite:///{INSTANCE_DIR / 'crm.sqlite3'}"
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    REDIS_URL: str | None = None
    SECRET_KEY: str | None = None
    PUBLIC_BASE_URL = "http://127.0.0.1:5000"
    TWILIO_ACCOUNT_SID: str | None = None
    TWILIO_AUTH_TOKEN: str | None = None
    TWILIO_SENDER: str | None = None
    TWILIO_BASE_URL: str | None = None  # only for the fake Twilio server in tests
    SMTP_URL: str | None = None
    MAIL_FROM = "Open Lab CRM <ne-pas-repondre@open-lab.example>"
    SMS_BACKEND = "outbox"  # "twilio" when the three TWILIO_* settings are set (from_env)
    EMAIL_BACKEND = "outbox"  # "smtp" when SMTP_URL is set (from_env)
    SMS_VALIDITY_SECONDS = 4 * 3600  # Twilio drops an SMS still queued after this delay
    TWILIO_TIMEOUT_SECONDS = 10.0
    SMTP_TIMEOUT_SECONDS = 10.0
    CRM_TIMEZONE = "Europe/Paris"
    WTF_CSRF_TIME_LIMIT = None  # a caller's form stays valid for the whole afternoon
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False  # True in production (from_env): HTTPS only
    REMEMBER_COOKIE_HTTPONLY = True  # Flask-Login's "remember me" cookie, if ever used
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = False
    HSTS_SECONDS = 0  # Strict-Transport-Security: set in production over HTTPS (from_env)
    # Who the messages come from: every SMS and e-mail template must name it (sequence editor).
    CRM_SENDER_NAME = "Open Lab"
    # The footer's legal pages: who publishes the service (empty: the sender name), whom
    # people write to about their data or accessibility, and the host's name and address.
    CRM_PUBLISHER = ""
    CRM_CONTACT_EMAIL = ""
    CRM_HOSTING = ""
    PROSPECTS_PER_PAGE = 50
    IMPORT_MAX_BYTES = 20 * 1024 * 1024
    IMPORT_INLINE_MAX_ROWS = 2000
    # No request body may exceed the import limit (plus room for the form's other fields).
    MAX_CONTENT_LENGTH = IMPORT_MAX_BYTES + 1024 * 1024
    CALL_DAYS = "1-5"  # 1 = Monday
    CALL_HOURS = "09:00-19:00"
    SEND_DAYS = "1-5"
    SEND_HOURS = "10:00-20:00"
    SMS_RATE_PER_SECOND = 1.0  # per sender, shared by every worker through Redis
    RETRY_BACKOFF_SECONDS = 300  # first retry after a provider failure; ×4 each time
    # A follow-up queued (or sending) this long without its job is looked at again by the
    # dispatcher: queued is enqueued again, sending goes to review.
    STUCK_AFTER_SECONDS = 600
    CALL_LEASE_MINUTES = 15
    CALL_RETRY_HOURS = 4  # after no answer, wait before serving the same person again
    PRESSURE_CAP_MESSAGES = 4  # automated messages per person, all labs together...
    PRESSURE_CAP_DAYS = 30  # ...within this many days
    REFUSAL_QUIET_DAYS = 60  # nothing automated after a person declined
    # CNIL guidance for prospects: anonymised 3 years after the last contact from the person.
    RETENTION_DAYS = 1095
    FORECAST_DEFAULT_NO_SHOW = 0.2  # a source's no-show rate until it has enough history
    # Reverse proxies in front of the app (the TLS proxy: 1): their X-Forwarded-For gives the
    # client's address to the login rate limit. 0 trusts no such header.
    PROXY_HOPS = 0

    @classmethod
    def from_env(cls) -> dict:
        """Read every setting from the environment; fail clearly in production."""
        load_dotenv(PROJECT_ROOT / ".env", override=False)
        env = os.environ
        values: dict = {
            k: getattr(cls, k) for k in dir(cls) if k.isupper() and not k.startswith("_")
        }
        values["CRM_ENV"] = env.get("CRM_ENV", "development")
        for key in (
            "REDIS_URL",
            "SECRET_KEY",
            "PUBLIC_BASE_URL",
            "TWILIO_ACCOUNT_SID",
            "TWILIO_AUTH_TOKEN",
            "TWILIO_SENDER",
            "TWILIO_BASE_URL",
            "SMTP_URL",
            "MAIL_FROM",
            "CRM_TIMEZONE",
            "CRM_SENDER_NAME",
            "CRM_PUBLISHER",
            "CRM_CONTACT_EMAIL",
            "CRM_HOSTING",
        ):
            if env.get(key):
                values[key] = env[key]
        if env.get("DATABASE_URL"):
            values["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(env["DATABASE_URL"])
        for key in ("CALL_DAYS", "CALL_HOURS", "SEND_DAYS", "SEND_HOURS"):
            if env.get(f"CRM_{key}"):
                values[key] = env[f"CRM_{key}"]
        if env.get("CRM_SMS_RATE_PER_SECOND"):
            values["SMS_RATE_PER_SECOND"] = float(env["CRM_SMS_RATE_PER_SECOND"])
        for key in (
            "CALL_LEASE_MINUTES",
            "CALL_RETRY_HOURS",
            "PRESSURE_CAP_MESSAGES",
            "PRESSURE_CAP_DAYS",
            "REFUSAL_QUIET_DAYS",
            "RETENTION_DAYS",
            "PROXY_HOPS",
            "RETRY_BACKOFF_SECONDS",
            "STUCK_AFTER_SECONDS",
        ):
            if env.get(f"CRM_{key}"):
                values[key] = int(env[f"CRM_{key}"])
        for key in ("TWILIO_TIMEOUT_SECONDS", "SMTP_TIMEOUT_SECONDS"):
            if env.get(f"CRM_{key}"):
                values[key] = float(env[f"CRM_{key}"])
        if env.get("CRM_FORECAST_DEFAULT_NO_SHOW"):
            values["FORECAST_DEFAULT_NO_SHOW"] = float(env["CRM_FORECAST_DEFAULT_NO_SHOW"])
        if env.get("IMPORT_MAX_MB"):
            values["IMPORT_MAX_BYTES"] = int(float(env["IMPORT_MAX_MB"]) * 1024 * 1024)
            values["MAX_CONTENT_LENGTH"] = values["IMPORT_MAX_BYTES"] + 1024 * 1024
        _choose_messaging_backends(env, values)
        if not values["SECRET_KEY"]:
            if values["CRM_ENV"] == "production":
                raise ConfigError(
                    "SECRET_KEY est obligatoire en production (CRM_ENV=production) : "
                    "définissez une valeur longue et aléatoire, par exemple "
                    "`python -c 'import secrets; print(secrets.token_hex(32))'`."
                )
            values["SECRET_KEY"] = _dev_secret_key(Path(values["INSTANCE_DIR"]))
        _secure_cookies_and_hsts(env, values)
        return values


def _secure_cookies_and_hsts(env: Mapping[str, str], values: dict) -> None:
    """Production: cookies only over HTTPS; HSTS when the public address is HTTPS
    (CRM_HSTS_SECONDS overrides the one-year default, 0 turns it off)."""
    if values["CRM_ENV"] != "production":
        return
    values["SESSION_COOKIE_SECURE"] = True
    values["REMEMBER_COOKIE_SECURE"] = True
    if str(values.get("PUBLIC_BASE_URL", "")).startswith("https://"):
        values["HSTS_SECONDS"] = 365 * 24 * 3600
    if env.get("CRM_HSTS_SECONDS"):
        values["HSTS_SECONDS"] = int(env["CRM_HSTS_SECONDS"])


def _choose_messaging_backends(env: Mapping[str, str], values: dict) -> None:
    """SMS through Twilio when its three settings are set, e-mail through SMTP when SMTP_URL is;
    CRM_SMS_BACKEND / CRM_EMAIL_BACKEND force a backend (e.g. outbox with Twilio configured)."""
    twilio_keys = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_SENDER")
    twilio_ready = all(values.get(k) for k in twilio_keys)
    sms = env.get("CRM_SMS_BACKEND") or ("twilio" if twilio_ready else "outbox")
    email = env.get("CRM_EMAIL_BACKEND") or ("smtp" if values.get("SMTP_URL") else "outbox")
    if sms not in ("twilio", "outbox") or (sms == "twilio" and not twilio_ready):
        raise ConfigError(
            f"CRM_SMS_BACKEND={sms} : valeurs possibles twilio (avec TWILIO_ACCOUNT_SID, "
            "TWILIO_AUTH_TOKEN et TWILIO_SENDER) ou outbox."
        )
    if email not in ("smtp", "outbox") or (email == "smtp" and not values.get("SMTP_URL")):
        raise ConfigError(
            f"CRM_EMAIL_BACKEND={email} : valeurs possibles smtp (avec SMTP_URL) ou outbox."
        )
    if sms == "twilio":
        from crm.messaging.senders import parse_sender

        try:
            parse_sender(values["TWILIO_SENDER"])
        except ValueError as exc:
            raise ConfigError(f"TWILIO_SENDER : {exc}") from exc
    values["SMS_BACKEND"], values["EMAIL_BACKEND"] = sms, email
    if env.get("CRM_SMS_VALIDITY_SECONDS"):
        values["SMS_VALIDITY_SECONDS"] = int(env["CRM_SMS_VALIDITY_SECONDS"])
        if not 1 <= values["SMS_VALIDITY_SECONDS"] <= 36_000:
            raise ConfigError("CRM_SMS_VALIDITY_SECONDS doit être entre 1 et 36000 secondes.")


def normalise_database_url(url: str) -> str:
    """Accept the usual postgres:// spellings and use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def testing_config(database_url: str | None, redis_url: str | None, instance_dir: Path) -> dict:
    """Settings for the test suite: a given database and Redis, CSRF on as in production."""
    values = {k: getattr(Config, k) for k in dir(Config) if k.isupper() and not k.startswith("_")}
    values.update(
        TESTING=True,
        CRM_ENV="test",
        INSTANCE_DIR=instance_dir,
        SECRET_KEY="test-secret-key",
        SQLALCHEMY_DATABASE_URI=normalise_database_url(
            database_url or f"sqlite:///{instance_dir / 'test.sqlite3'}"
        ),
        REDIS_URL=redis_url,
        PUBLIC_BASE_URL="http://localhost",
    )
    return values
