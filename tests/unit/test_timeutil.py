"""Aware datetimes only: UTC in the database, Europe/Paris (CRM_TIMEZONE) on screen."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask

from crm.config import normalise_database_url
from crm.timeutil import UTCDateTime, format_local, from_local, to_local

PARIS = ZoneInfo("Europe/Paris")

metadata = sa.MetaData()
stamps = sa.Table(
    "timeutil_stamps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UTCDateTime),
    prefixes=["TEMPORARY"],
)


def _engines() -> list[str]:
    urls = ["sqlite://"]
    test_url = os.environ.get("TEST_DATABASE_URL", "")
    if test_url.startswith("postgres"):
        urls.append(normalise_database_url(test_url))
    return urls


@pytest.fixture(params=_engines(), ids=lambda url: url.split(":")[0].split("+")[0])
def conn(request: pytest.FixtureRequest) -> Iterator[sa.Connection]:
    """A connection holding a TEMPORARY table (gone with the connection: nothing shared)."""
    engine = sa.create_engine(request.param)
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # A session time zone other than UTC: the values must still come back in UTC.
            conn.execute(sa.text("SET TIME ZONE 'America/Cayenne'"))
        metadata.create_all(conn)
        yield conn
        conn.rollback()
    engine.dispose()


def test_naive_datetimes_are_refused_on_write(conn):
    with pytest.raises(sa.exc.StatementError, match="naive datetime refused"):
        conn.execute(stamps.insert().values(at=datetime(2026, 3, 29, 2, 30)))


@pytest.mark.parametrize(
    "written",
    [
        datetime(2026, 3, 29, 3, 30, tzinfo=PARIS),  # just after clocks go forward
        datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=PARIS),  # the second 02:30 in October
        datetime(2026, 1, 15, 12, 0, tzinfo=UTC),
        datetime(2026, 6, 1, 8, 0, tzinfo=timezone(timedelta(hours=-3))),
    ],
)
def test_aware_datetimes_come_back_as_the_same_instant_in_utc(conn, written):
    conn.execute(stamps.insert().values(id=1, at=written))
    read = conn.execute(sa.select(stamps.c.at)).scalar_one()
    # Compared in UTC: Python never finds an ambiguous (fold=1) time equal across zones.
    assert read == written.astimezone(UTC)
    assert read.timestamp() == written.timestamp()
    assert read.tzinfo is not None and read.utcoffset() == timedelta(0)


def test_sqlite_stores_the_utc_wall_clock():
    engine = sa.create_engine("sqlite://")
    with engine.connect() as conn:
        metadata.create_all(conn)
        conn.execute(stamps.insert().values(at=datetime(2026, 7, 14, 10, 0, tzinfo=PARIS)))
        raw = conn.execute(sa.text("SELECT at FROM timeutil_stamps")).scalar_one()
    assert raw.startswith("2026-07-14 08:00:00")


def test_null_stays_null(conn):
    conn.execute(stamps.insert().values(id=1, at=None))
    assert conn.execute(sa.select(stamps.c.at)).scalar_one() is None


@pytest.mark.parametrize(
    ("utc", "shown"),
    [
        (datetime(2026, 1, 15, 12, 0, tzinfo=UTC), "15 janvier 2026 à 13:00"),
        (datetime(2026, 3, 29, 0, 30, tzinfo=UTC), "29 mars 2026 à 01:30"),
        (datetime(2026, 3, 29, 1, 30, tzinfo=UTC), "29 mars 2026 à 03:30"),
        (datetime(2026, 7, 14, 8, 5, tzinfo=UTC), "14 juillet 2026 à 10:05"),
        (datetime(2026, 8, 15, 22, 30, tzinfo=UTC), "16 août 2026 à 00:30"),
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "25 octobre 2026 à 02:30"),
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "25 octobre 2026 à 02:30"),
        (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), "1 janvier 2027 à 00:59"),
    ],
)
def test_format_local_shows_paris_time_across_daylight_saving(utc, shown):
    assert format_local(utc) == shown


def test_format_local_with_the_day_and_without_a_value():
    assert format_local(datetime(2026, 3, 29, 1, 30, tzinfo=UTC), with_day=True) == (
        "dimanche 29 mars 2026 à 03:30"
    )
    assert format_local(datetime(2026, 2, 2, 9, 0, tzinfo=UTC), with_day=True) == (
        "lundi 2 février 2026 à 10:00"
    )
    assert format_local(None) == ""


def test_naive_datetimes_are_refused_on_display():
    with pytest.raises(ValueError, match="naive"):
        format_local(datetime(2026, 1, 15, 12, 0))
    with pytest.raises(ValueError, match="naive"):
        to_local(datetime(2026, 1, 15, 12, 0))


def test_from_local_reads_a_typed_wall_clock_time_as_paris():
    assert from_local(datetime(2026, 3, 30, 10, 0)) == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    assert from_local(datetime(2026, 1, 15, 10, 0)) == datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
    aware = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
    assert from_local(aware) == aware and from_local(aware).tzinfo is UTC


def test_the_display_zone_follows_crm_timezone_in_the_app():
    app = Flask(__name__)
    app.config["CRM_TIMEZONE"] = "Indian/Reunion"
    with app.app_context():
        assert format_local(datetime(2026, 1, 15, 12, 0, tzinfo=UTC)) == "15 janvier 2026 à 16:00"
        assert from_local(datetime(2026, 1, 15, 16, 0)) == datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
