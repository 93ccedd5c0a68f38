"""SQL for thousands of rows at once, fast on PostgreSQL and correct everywhere.

- bulk_insert: a plain executemany costs one statement per row on PostgreSQL (psycopg
  pipelines them); COPY sends them in one stream, several times faster. The columns' Python
  defaults (created_at, status, ...) and types (aware UTC datetimes, JSON) are applied as
  SQLAlchemy would.
- one_of: `column IN (...)` with a thousand values is slow to plan on PostgreSQL; one array
  parameter (`column = ANY(:values)`) is not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from crm.extensions import db


def bulk_insert(table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert the rows in the session's transaction (no ids are returned)."""
    if not rows:
        return
    connection = db.session.connection()
    dialect = connection.dialect
    if dialect.name != "postgresql" or dialect.driver != "psycopg" or _sql_defaults(table):
        db.session.execute(sa.insert(table), list(rows))
        return
    names = set().union(*(row.keys() for row in rows))
    columns = [c for c in table.columns if c.name in names or _has_python_default(c)]
    processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
    # Defaults are computed once per call: one created_at for the whole batch.
    defaults = [
        _process(process, _default_value(c)) for c, process in zip(columns, processors, strict=True)
    ]
    plan = list(zip([c.name for c in columns], defaults, processors, strict=True))
    quote = dialect.identifier_preparer.quote
    statement = (
        f"COPY {dialect.identifier_preparer.format_table(table)} "
        f"({', '.join(quote(c.name) for c in columns)}) FROM STDIN"
    )
    driver_connection: Any = connection.connection.driver_connection
    with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(
                [
                    _process(process, row[name]) if name in row else default
                    for name, default, process in plan
                ]
            )


def _process(process: Callable[[Any], Any] | None, value: Any) -> Any:
    return value if process is None or value is None else process(value)


def one_of(column: Any, values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """`column IN values`, as one array parameter on PostgreSQL."""
    if db.session.get_bind().dialect.name == "postgresql":
        return column == sa.func.any(sa.literal(list(values), ARRAY(column.type)))
    return column.in_(list(values))


def _has_python_default(column: sa.Column[Any]) -> bool:
    default = column.default
    return default is not None and (default.is_scalar or default.is_callable)


def _sql_defaults(table: sa.Table) -> bool:
    """A default computed by an SQL expression: leave those tables to SQLAlchemy."""
    return any(
        c.default is not None and not _has_python_default(c) and not c.primary_key
        for c in table.columns
    )


def _default_value(column: sa.Column[Any]) -> Any:
    default = column.default
    if default is None:
        return None
    if default.is_callable:
        return default.arg(None)  # type: ignore[union-attr, operator]
    return default.arg  # type: ignore[union-attr]
