"""Table tests of the sending rules (crm.services.send_rules) and step timing (followups)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.messaging.encoding import sms_info
from crm.models import SequenceStep
from crm.services.followups import step_due
from crm.services.send_rules import (
    permission_refusal,
    pressure_refusal,
    quiet_refusal,
    relevance_refusal,
    retry_at,
    window_move,
)
from crm.services.sequences import DEFAULTS, TemplateError, render
from crm.services.window import is_holiday, is_open, parse_window

PARIS = ZoneInfo("Europe/Paris")
WINDOW = parse_window("1-5", "10:00-20:00")


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)


@pytest.mark.parametrize(
    ("kind", "status", "started", "full", "expected"),
    [
        ("invitation", "to_contact", False, False, None),
        ("invitation", "contacted", False, False, None),
        ("invitation", "interested", False, False, None),
        ("invitation", "confirmed", False, False, "déjà confirmé"),
        ("invitation", "declined", False, False, "décliné"),
        ("invitation", "cancelled", False, False, "annulée"),
        ("invitation", "disqualified", False, False, "hors cible"),
        ("invitation", "waitlisted", False, False, "n'attend plus"),
        ("invitation", "interested", True, False, "commencé"),
        ("invitation", "interested", False, True, "complet"),
        ("reminders", "confirmed", False, True, None),
        ("reminders", "confirmed", True, False, "commencé"),
        ("reminders", "interested", False, False, "n'attend plus"),
        ("reminders", "declined", False, False, "décliné"),
        ("thank_you", "attended", True, False, None),
        ("thank_you", "no_show", True, False, "n'attend plus"),
    ],
)
def test_relevance(kind, status, started, full, expected):
    reason = relevance_refusal(kind, status, started, full)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason


@pytest.mark.parametrize(
    ("channel", "allowed", "address", "invalid", "expected"),
    [
        ("sms", True, "+33612345678", False, None),
        ("sms", False, "+33612345678", False, "pas autorisé les SMS"),
        ("sms", True, None, True, "invalide"),
        ("email", True, None, False, "absente"),
        ("email", False, "a@b.fr", False, "e-mails"),
    ],
)
def test_permission(channel, allowed, address, invalid, expected):
    reason = permission_refusal(channel, allowed, address, invalid)
    assert (reason is None) if expected is None else (expected in reason)


@pytest.mark.parametrize(("sent", "refused"), [(0, False), (3, False), (4, True), (9, True)])
def test_pressure_cap(sent, refused):
    assert (pressure_refusal(sent, 4, 30) is not None) is refused


def test_quiet_period_after_a_refusal():
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert quiet_refusal(None, now, 60) is None
    assert quiet_refusal(now - timedelta(days=59), now, 60) is not None
    assert quiet_refusal(now - timedelta(days=61), now, 60) is None


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (paris(2026, 3, 13, 19, 59), None),  # Friday 19:59: still inside
        (paris(2026, 3, 13, 20, 0), paris(2026, 3, 16, 10, 0)),  # Friday 20:00 → Monday
        (paris(2026, 3, 14, 11, 0), paris(2026, 3, 16, 10, 0)),  # Saturday → Monday
        (paris(2026, 3, 16, 7, 0), paris(2026, 3, 16, 10, 0)),  # Monday early → 10:00
        (paris(2026, 7, 14, 11, 0), paris(2026, 7, 15, 10, 0)),  # Bastille Day
        (paris(2026, 12, 24, 20, 30), paris(2026, 12, 28, 10, 0)),  # Christmas, weekend
        # Clocks go forward on Sunday 29 March 2026: Monday 10:00 is 08:00 UTC.
        (paris(2026, 3, 28, 12, 0), datetime(2026, 3, 30, 8, 0, tzinfo=UTC)),
        # Clocks go back on Sunday 25 October 2026: Monday 10:00 is 09:00 UTC.
        (paris(2026, 10, 24, 12, 0), datetime(2026, 10, 26, 9, 0, tzinfo=UTC)),
    ],
)
def test_window_moves(moment, expected):
    moved = window_move(moment.astimezone(UTC), WINDOW)
    assert moved == expected
    if moved is not None:
        assert moved.tzinfo is not None


def test_dst_week_friday_evening_moves_to_monday_in_summer_time():
    friday = paris(2026, 3, 27, 20, 0).astimezone(UTC)  # 19:00 UTC, winter time
    assert window_move(friday, WINDOW) == paris(2026, 3, 30, 10, 0)


def _step(offset: int, day_time: time | None = None) -> SequenceStep:
    return SequenceStep(channel="sms", position=1, offset_minutes=offset, day_time=day_time)


def test_step_due_offsets_are_signed_minutes():
    lab = paris(2026, 3, 31, 14, 0).astimezone(UTC)
    assert step_due(_step(-2 * 24 * 60), lab) == lab - timedelta(days=2)
    assert step_due(_step(24 * 60), lab) == lab + timedelta(days=1)


@pytest.mark.parametrize(
    ("lab_start", "morning"),
    [
        (paris(2026, 3, 30, 14, 0), paris(2026, 3, 30, 8, 30)),  # day after the spring change
        (paris(2026, 10, 26, 14, 0), paris(2026, 10, 26, 8, 30)),  # day after the autumn one
        (paris(2026, 6, 2, 0, 30), paris(2026, 6, 2, 8, 30)),  # local date, not the UTC date
    ],
)
def test_morning_of_the_lab_is_local_wall_clock(lab_start, morning):
    due = step_due(_step(0, time(8, 30)), lab_start.astimezone(UTC))
    assert due == morning
    assert window_move(due, WINDOW) == morning.replace(hour=10, minute=0)


def test_retry_backoff_grows_and_stays_in_the_window():
    now = paris(2026, 3, 16, 12, 0)
    assert retry_at(now, 1, WINDOW) == now + timedelta(minutes=5)
    assert retry_at(now, 2, WINDOW) == now + timedelta(minutes=20)
    late = paris(2026, 3, 13, 19, 58)
    assert retry_at(late, 1, WINDOW) == paris(2026, 3, 16, 10, 0)


FIELDS = {
    "prenom": "Léa",
    "nom": "Martin",
    "lab": "Démarches en ligne",
    "date": "mardi 3 mars 2026 à 14:00",
    "heure": "14:00",
    "lieu": "20 avenue de Ségur, Paris",
    "lien": "https://crm.example.fr/r/Mw.abcdefghijklmnop",
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Bonjour {prenom} {nom}", "Bonjour Léa Martin"),
        ("{lab} le {date}", "Démarches en ligne le mardi 3 mars 2026 à 14:00"),
        ("Sans champ", "Sans champ"),
    ],
)
def test_render_fills_the_fixed_fields(template, expected):
    assert render(template, FIELDS) == expected


@pytest.mark.parametrize(
    "template", ["{prenom.__class__}", "{prenom[0]}", "{inconnu}", "{}", "{ prenom }"]
)
def test_render_refuses_anything_but_a_known_field(template):
    with pytest.raises(TemplateError):
        render(template, FIELDS)


@pytest.mark.parametrize("kind", sorted(DEFAULTS))
def test_default_templates_say_who_sends_and_how_to_stop(kind):
    for spec in DEFAULTS[kind][1]:
        if spec.channel == "call":
            continue
        text = render(spec.body, FIELDS)
        assert "Open Lab" in text and FIELDS["lien"] in text
        if spec.channel == "sms":
            info = sms_info(text)
            assert info.encoding == "GSM-7" and info.segments <= 2


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(2025, 1, 1),
        max_value=datetime(2028, 12, 31),
        timezones=st.just(UTC),
    )
)
def test_window_move_lands_inside_the_window_and_never_earlier(moment):
    moved = window_move(moment, WINDOW)
    if moved is None:
        assert is_open(moment, WINDOW)
        return
    local = moved.astimezone(PARIS)
    assert moved > moment and is_open(moved, WINDOW)
    assert local.time() == time(10, 0) and local.weekday() < 5 and not is_holiday(local.date())
    assert moved - moment < timedelta(days=6)
