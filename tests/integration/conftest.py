"""Shared fixtures for the integration tests."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crm.extensions import db
from crm.models import Lab, Source
from crm.services.accounts import create_user
from crm.timeutil import utcnow


@pytest.fixture
def world(app_ctx):
    """A recruiting lab, a source and two callers."""
    source = Source(name="Annuaire")
    now = utcnow()
    lab = Lab(
        title="Lab",
        starts_at=now + timedelta(days=20),
        ends_at=now + timedelta(days=20, hours=4),
        status="recruiting",
    )
    db.session.add_all([source, lab])
    db.session.commit()
    alice = create_user("alice@test.fr", "x" * 12, "caller")
    bob = create_user("bob@test.fr", "x" * 12, "caller")
    return {"source": source, "lab": lab, "alice": alice, "bob": bob}
