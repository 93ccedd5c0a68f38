"""Config.from_env: clear failures in production, a persistent secret in development."""

from __future__ import annotations

from pathlib import Path

import pytest

import crm.config
from crm.config import Config, ConfigError, normalise_database_url

VARIABLES = (
    "CRM_ENV",
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "PUBLIC_BASE_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_SENDER",
    "TWILIO_BASE_URL",
    "SMTP_URL",
    "MAIL_FROM",
    "CRM_TIMEZONE",
    "IMPORT_MAX_MB",
    "CRM_RETENTION_DAYS",
    "CRM_PROXY_HOPS",
    "CRM_FORECAST_DEFAULT_NO_SHOW",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A clean environment, no .env file, and the instance folder in tmp_path."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(crm.config, "load_dotenv", lambda *args, **kwargs: False)
    monkeypatch.setattr(crm.config.Config, "INSTANCE_DIR", tmp_path / "instance")
    return monkeypatch


def test_production_without_secret_key_fails_clearly(env, tmp_path):
    env.setenv("CRM_ENV", "production")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Config.from_env()
    assert not (tmp_path / "instance" / "secret_key").exists()


def test_production_with_secret_key_uses_it_and_secure_cookies(env):
    env.setenv("CRM_ENV", "production")
    env.setenv("SECRET_KEY", "une-cle-longue-et-aleatoire")
    values = Config.from_env()
    assert values["SECRET_KEY"] == "une-cle-longue-et-aleatoire"
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CRM_ENV"] == "production"


def test_development_generates_the_secret_key_once(env, tmp_path):
    first = Config.from_env()
    path = tmp_path / "instance" / "secret_key"
    assert path.read_text().strip() == first["SECRET_KEY"]
    assert len(first["SECRET_KEY"]) >= 32
    assert path.stat().st_mode & 0o777 == 0o600
    second = Config.from_env()
    assert second["SECRET_KEY"] == first["SECRET_KEY"]
    assert first["CRM_ENV"] == "development"
    assert first["SESSION_COOKIE_SECURE"] is False and first["HSTS_SECONDS"] == 0


def test_a_given_secret_key_is_not_written_to_disk(env, tmp_path):
    env.setenv("SECRET_KEY", "from-the-environment")
    assert Config.from_env()["SECRET_KEY"] == "from-the-environment"
    assert not (tmp_path / "instance" / "secret_key").exists()


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://crm:pw@db:5432/crm", "postgresql+psycopg://crm:pw@db:5432/crm"),
        ("postgresql://crm@db/crm", "postgresql+psycopg://crm@db/crm"),
        ("postgresql+psycopg://crm@db/crm", "postgresql+psycopg://crm@db/crm"),
        ("sqlite:////var/lib/crm/crm.sqlite3", "sqlite:////var/lib/crm/crm.sqlite3"),
    ],
)
def test_database_url_uses_psycopg_3(env, given, used):
    assert normalise_database_url(given) == used
    env.setenv("DATABASE_URL", given)
    assert Config.from_env()["SQLALCHEMY_DATABASE_URI"] == used


def test_without_database_url_development_uses_sqlite_under_instance(env):
    assert Config.from_env()["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")


def test_settings_are_read_from_the_environment(env):
    env.setenv("REDIS_URL", "redis://redis:6379/0")
    env.setenv("PUBLIC_BASE_URL", "https://crm.exemple.gouv.fr")
    env.setenv("TWILIO_SENDER", "OPENLAB")
    env.setenv("CRM_TIMEZONE", "America/Cayenne")
    env.setenv("IMPORT_MAX_MB", "5")
    env.setenv("SMTP_URL", "")  # empty means unset, as docker-compose passes it
    values = Config.from_env()
    assert values["REDIS_URL"] == "redis://redis:6379/0"
    assert values["PUBLIC_BASE_URL"] == "https://crm.exemple.gouv.fr"
    assert values["TWILIO_SENDER"] == "OPENLAB"
    assert values["CRM_TIMEZONE"] == "America/Cayenne"
    assert values["IMPORT_MAX_BYTES"] == 5 * 1024 * 1024
    assert values["SMTP_URL"] is None
    assert values["MAIL_FROM"] == Config.MAIL_FROM


def test_retention_forecast_and_proxy_settings(env):
    values = Config.from_env()
    assert (values["RETENTION_DAYS"], values["PROXY_HOPS"]) == (1095, 0)
    env.setenv("CRM_RETENTION_DAYS", "730")
    env.setenv("CRM_PROXY_HOPS", "1")
    env.setenv("CRM_FORECAST_DEFAULT_NO_SHOW", "0.3")
    values = Config.from_env()
    assert values["RETENTION_DAYS"] == 730 and values["PROXY_HOPS"] == 1
    assert values["FORECAST_DEFAULT_NO_SHOW"] == 0.3


def test_behind_the_proxy_the_client_address_comes_from_its_header(tmp_path):
    from flask import request

    from crm import create_app

    config = crm.config.testing_config(None, "redis://127.0.0.1:1/0", tmp_path)
    app = create_app({**config, "PROXY_HOPS": 1})
    forwarded = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    seen = {}

    @app.after_request
    def note(response):  # type: ignore[no-untyped-def]
        seen["addr"], seen["scheme"] = request.remote_addr, request.scheme
        return response

    app.test_client().get("/healthz", headers=forwarded, environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert seen == {"addr": "203.0.113.7", "scheme": "https"}


def test_testing_config_uses_the_given_database_and_redis(tmp_path):
    values = crm.config.testing_config("postgres://u@h/db", "redis://127.0.0.1:6379/15", tmp_path)
    assert values["TESTING"] is True
    assert values["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"
    assert values["REDIS_URL"] == "redis://127.0.0.1:6379/15"
    assert values["INSTANCE_DIR"] == tmp_path
    default = crm.config.testing_config(None, None, tmp_path)
    assert default["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'test.sqlite3'}"
