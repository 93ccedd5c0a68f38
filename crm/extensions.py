"""Flask extensions, created unbound and attached in create_app."""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlalchemy as sa
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData

from crm.timeutil import UTCDateTime

# Named constraints so that Alembic migrations work the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING))


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Migrations store UTCDateTime as a plain timezone-aware DateTime."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Indexes declared for one database only (Index.ddl_if) are written by hand in their
    migration; autogenerate, which cannot tell, leaves them alone."""
    if type_ == "index":
        return not (getattr(obj, "_ddl_if", None) or getattr(compare_to, "_ddl_if", None))
    return True


migrate = Migrate(
    render_as_batch=True,
    compare_type=True,
    render_item=_render_item,
    include_object=_include_object,
)
csrf = CSRFProtect()
# Counters live in the app's Redis (see create_app); no limit applies unless a view sets one.
limiter = Limiter(key_func=get_remote_address)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Connectez-vous pour accéder à cette page."
login_manager.login_message_category = "info"


@sa.event.listens_for(sa.engine.Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """SQLite (development, tests): the web, the worker and the dispatcher share one file. WAL
    lets readers work while one process writes, a commit costs one fsync instead of two, and a
    writer waits up to 5 s for the lock instead of failing at once."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
