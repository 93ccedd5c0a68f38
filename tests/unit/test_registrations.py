"""The registration status machine: every legal and every illegal transition."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.models import Event, Lab, Prospect, Registration, Source
from crm.models.registration import REGISTRATION_STATUSES
from crm.services.registrations import (
    TRANSITIONS,
    TransitionError,
    check_transition,
    register,
    transition,
)
from crm.timeutil import utcnow

LEGAL = [(a, b) for a, targets in TRANSITIONS.items() for b in sorted(targets)]
ILLEGAL = [
    (a, b) for a, b in itertools.product(REGISTRATION_STATUSES, repeat=2) if b not in TRANSITIONS[a]
]


def test_the_table_covers_every_status():
    assert set(TRANSITIONS) == set(REGISTRATION_STATUSES)
    for targets in TRANSITIONS.values():
        assert targets <= set(REGISTRATION_STATUSES)


def test_the_main_path_is_legal():
    path = ["to_contact", "contacted", "interested", "confirmed", "attended"]
    for a, b in itertools.pairwise(path):
        check_transition(a, b)
    check_transition("confirmed", "no_show")


@pytest.mark.parametrize("current,target", LEGAL)
def test_legal_transitions_pass(current, target):
    check_transition(current, target)


@pytest.mark.parametrize("current,target", ILLEGAL)
def test_illegal_transitions_raise_a_french_error(current, target):
    with pytest.raises(TransitionError, match="Impossible de passer de"):
        check_transition(current, target)


def test_unknown_status_is_refused():
    with pytest.raises(TransitionError, match="Statut inconnu"):
        check_transition("to_contact", "maybe")


def test_lab_day_statuses_only_correct_each_other():
    # A check-in made by mistake goes back to confirmed; a no-show checked in late attended.
    assert TRANSITIONS["attended"] == frozenset({"confirmed"})
    assert TRANSITIONS["no_show"] == frozenset({"attended"})


def test_anyone_invited_can_turn_up_but_not_someone_out_of_scope():
    for status in ("to_contact", "contacted", "interested", "waitlisted", "declined"):
        assert "attended" in TRANSITIONS[status]
    assert "attended" not in TRANSITIONS["disqualified"]


@pytest.fixture
def registration(app_ctx):
    source = Source(name="Test")
    lab = Lab(title="Lab", starts_at=utcnow(), ends_at=utcnow().replace(year=2100))
    prospect = Prospect(first_name="Ana", phone="+33612345678", source=source)
    db.session.add_all([source, lab, prospect])
    db.session.flush()
    reg, created = register(prospect, lab, actor=None, reason="test")
    assert created
    db.session.commit()
    return reg


def test_transitions_are_journaled_and_illegal_ones_change_nothing(registration):
    transition(registration, "interested", None, "intéressée au téléphone")
    transition(registration, "confirmed", None, "")
    db.session.commit()
    with pytest.raises(TransitionError):
        transition(registration, "to_contact", None, "")
    db.session.rollback()
    assert db.session.get(Registration, registration.id).status == "confirmed"
    events = db.session.scalars(
        sa.select(Event).where(Event.registration_id == registration.id).order_by(Event.id)
    ).all()
    assert [(e.from_status, e.to_status) for e in events] == [
        (None, "to_contact"),
        ("to_contact", "interested"),
        ("interested", "confirmed"),
    ]
    assert events[1].reason == "intéressée au téléphone"


def test_registering_twice_returns_the_same_registration(registration):
    again, created = register(registration.prospect, registration.lab, None)
    assert not created and again.id == registration.id


def test_events_are_append_only(registration):
    event = db.session.scalar(sa.select(Event))
    event.reason = "réécrit"
    with pytest.raises(Exception, match="append-only"):
        db.session.commit()
    db.session.rollback()
    with pytest.raises(Exception, match="append-only"):
        db.session.delete(db.session.scalar(sa.select(Event)))
        db.session.commit()
    db.session.rollback()
