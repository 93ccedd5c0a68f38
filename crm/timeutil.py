"""Aware datetimes only: UTC in the database and in RQ, CRM_TIMEZONE on screen."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, has_app_context

# The years a date typed in the interface may fall in: wider would reach the edges of what
# datetime and the time-zone conversion hold (year 1 minus an hour does not exist).
FIRST_YEAR, LAST_YEAR = 2000, 2100
BAD_YEAR = f"Saisissez une date entre {FIRST_YEAR} et {LAST_YEAR}."
# <input type=date> sends ISO; without a date picker people type dd/mm/yyyy.
DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def local_zone() -> ZoneInfo:
    name = current_app.config["CRM_TIMEZONE"] if has_app_context() else "Europe/Paris"
    return ZoneInfo(name)


def to_local(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime: every datetime in the CRM must be aware")
    return value.astimezone(local_zone())


def from_local(value: datetime) -> datetime:
    """A wall-clock time typed in the interface (naive, CRM_TIMEZONE) to aware UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=local_zone())
    return value.astimezone(UTC)


_MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
_DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


def format_local(value: datetime | None, with_day: bool = False) -> str:
    """French display: '3 mars 2026 à 14:30' (or 'mardi 3 mars 2026 à 14:30')."""
    local = to_local(value)
    if local is None:
        return ""
    text = f"{local.day} {_MONTHS[local.month - 1]} {local.year} à {local:%H:%M}"
    return f"{_DAYS[local.weekday()]} {text}" if with_day else text


def format_local_time(value: datetime | None) -> str:
    local = to_local(value)
    return f"{local:%H:%M}" if local else ""


class UTCDateTime(sa.types.TypeDecorator):
    """Stores aware datetimes as UTC; refuses naive ones; always returns aware UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: use crm.timeutil.utcnow() or an aware value")
        value = value.astimezone(UTC)
        # SQLite has no time zones: store the UTC wall clock.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
