"""Shared fixtures for the integration tests."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from crm.extensions import db
from crm.models import Lab, Source
from crm.services.accounts import create_user
from crm.timeutil import local_zone, utcnow


def lab_afternoon(days: int) -> datetime:
    """14:00 Paris time in `days` days: labs happen in the daytime, so tests that schedule
    the morning-of-the-lab reminder do not depend on the hour they run at."""
    day = utcnow().astimezone(local_zone()).date() + timedelta(days=days)
    return datetime.combine(day, time(14, 0), tzinfo=local_zone()).astimezone(UTC)


@pytest.fixture
def world(app_ctx):
    """A recruiting lab, a source and two callers."""
    source = Source(name="Annuaire")
    starts = lab_afternoon(days=20)
    lab = Lab(
        title="Lab",
        starts_at=starts,
        ends_at=starts + timedelta(hours=4),
        status="recruiting",
    )
    db.session.add_all([source, lab])
    db.session.commit()
    alice = create_user("alice@test.fr", "x" * 12, "caller")
    bob = create_user("bob@test.fr", "x" * 12, "caller")
    return {"source": source, "lab": lab, "alice": alice, "bob": bob}
