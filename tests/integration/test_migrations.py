"""The migrations build exactly the schema the models declare.

`flask db upgrade` runs on an empty database (a fresh SQLite file, or a dedicated PostgreSQL
database so that the shared `test` database is never touched), then Alembic's autogenerate
comparison must find nothing left to migrate.
"""

from __future__ import annotations

import os
import pprint
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import crm
import crm.config
from crm.extensions import db

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    """An empty database of the kind the suite runs on."""
    test_url = os.environ.get("TEST_DATABASE_URL", "")
    if not test_url.startswith("postgres"):
        yield f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
        return
    url = sa.make_url(crm.config.normalise_database_url(test_url))
    # One database per process: concurrent runs on the same server do not collide.
    name = f"crm_migration_check_{os.getpid()}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def flask_db_upgrade(database_url: str, redis_url: str, instance_dir: Path) -> None:
    """The real command, in its own process, configured from the environment as in production."""
    env = dict(
        os.environ,
        FLASK_APP="wsgi:app",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY="migration-test",
        CRM_ENV="development",
        CRM_INSTANCE_DIR=str(instance_dir),
    )
    result = subprocess.run(
        [str(BIN / "flask"), "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"flask db upgrade failed:\n{result.stdout}\n{result.stderr}"


def _shown(item: object) -> str:
    if isinstance(item, sa.Table):
        return f"table {item.name}"
    if isinstance(item, sa.Column):
        return f"column {item.table.name}.{item.name} {item.type}"
    if isinstance(item, sa.Index | sa.UniqueConstraint | sa.ForeignKeyConstraint):
        columns = ", ".join(c.name for c in item.columns)
        return f"{type(item).__name__} {item.name} on {item.table.name}({columns})"
    return pprint.pformat(item, compact=True, width=200)


def describe(diff: object) -> str:
    """One readable line per difference (Alembic nests column changes in lists)."""
    if isinstance(diff, list):
        return "\n".join(describe(d) for d in diff)
    if isinstance(diff, tuple) and diff:
        op, *args = diff
        return f"  - {op}: " + ", ".join(_shown(a) for a in args if a is not None)
    return f"  - {diff!r}"


def test_migrations_match_the_models(empty_database_url, redis_url, tmp_path):
    flask_db_upgrade(empty_database_url, redis_url, tmp_path)

    app = crm.create_app(crm.config.testing_config(empty_database_url, redis_url, tmp_path))
    with app.app_context():
        options = dict(app.extensions["migrate"].configure_args)
        assert options.get("render_as_batch") and options.get("compare_type")
        try:
            with db.engine.connect() as conn:
                version = conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                assert version.scalar_one(), "no migration was applied"
                context = MigrationContext.configure(conn, opts=options)
                diffs = compare_metadata(context, db.metadata)
        finally:
            db.engine.dispose()

    assert not diffs, (
        f"the models and the migrations differ ({len(diffs)} difference(s)); "
        "write a migration with `flask db migrate -m '...'`, review it, and commit it:\n"
        + "\n".join(describe(d) for d in diffs)
    )
