"""The target forecast (crm.services.forecast) on a small hand-built data set.

Past labs, per source:
- Mairie: 12 seen on the day, 3 absent (25 %); 12 registrations, all confirmed: conversion 1.
- Affiche: 10 seen, 5 absent (50 %); 15 registrations, 5 declined: conversion 2/3.
- Réseau: 4 seen, 1 absent: under the minimum history, default rate; 10 registrations, 6
  declined: conversion 0.4.
- Salon: no history at all (default rate, unknown conversion).
The upcoming lab has 8 + 6 + 5 + 5 confirmed people from Mairie, Affiche, Salon, Réseau:
expected = 8 × 0.75 + 6 × 0.5 + 5 × 0.8 + 5 × 0.8 = 17.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import count

import pytest

from crm.extensions import db
from crm.models import Event, Lab, Prospect, Registration, Source
from crm.services import forecast as fc
from crm.services.registrations import register, transition
from crm.timeutil import local_zone, utcnow
from tests.integration.conftest import lab_afternoon

_phones = count(600_000_001)


def _lab(title: str, starts: datetime, capacity: int = 60, target: int = 30) -> Lab:
    lab = Lab(
        title=title,
        starts_at=starts,
        ends_at=starts + timedelta(hours=4),
        capacity=capacity,
        target=target,
        status="recruiting",
    )
    db.session.add(lab)
    db.session.flush()
    return lab


def _person(source: Source, lab: Lab, steps: tuple[str, ...] = (), **fields) -> Registration:
    prospect = Prospect(source=source, phone=f"+33{next(_phones)}", allow_phone=True, **fields)
    db.session.add(prospect)
    db.session.flush()
    registration, _ = register(prospect, lab, None)
    for step in steps:
        transition(registration, step, None)
    return registration


def _people(source: Source, lab: Lab, n: int, *steps: str) -> None:
    for _ in range(n):
        _person(source, lab, steps)


ATTENDED = ("confirmed", "attended")
NO_SHOW = ("confirmed", "no_show")


@pytest.fixture
def data(app_ctx):
    sources = {name: Source(name=name) for name in ("Mairie", "Affiche", "Réseau", "Salon")}
    db.session.add_all(sources.values())
    db.session.flush()
    mairie, affiche, reseau, salon = sources.values()
    old = _lab("Lab 1", lab_afternoon(-40))
    recent = _lab("Lab 2", lab_afternoon(-10))
    _people(mairie, old, 4, *ATTENDED)
    _people(mairie, old, 2, *NO_SHOW)
    _people(mairie, recent, 5, *ATTENDED)
    _people(mairie, recent, 1, *NO_SHOW)
    _people(affiche, old, 3, *ATTENDED)
    _people(affiche, old, 2, *NO_SHOW)
    _people(affiche, recent, 2, *ATTENDED)
    _people(affiche, recent, 3, *NO_SHOW)
    _people(affiche, recent, 5, "declined")
    _people(reseau, recent, 3, *ATTENDED)
    _people(reseau, recent, 1, *NO_SHOW)
    _people(reseau, recent, 6, "declined")
    upcoming = _lab("Lab 3", lab_afternoon(20), capacity=50, target=30)
    upcoming.overbooking = 5
    for source, n in ((mairie, 8), (affiche, 6), (salon, 5), (reseau, 5)):
        _people(source, upcoming, n, "confirmed")
    db.session.commit()
    return {"old": old, "recent": recent, "upcoming": upcoming, **sources}


def test_source_no_show_rates_use_past_labs_and_a_minimum_history(data):
    rates = fc.source_no_show_rates(utcnow())
    mairie, affiche = rates[data["Mairie"].id], rates[data["Affiche"].id]
    assert (mairie.seen, mairie.no_shows, mairie.rate, mairie.from_history) == (12, 3, 0.25, True)
    assert (affiche.seen, affiche.no_shows, affiche.rate, affiche.from_history) == (
        10,
        5,
        0.5,
        True,
    )
    reseau, salon = rates[data["Réseau"].id], rates[data["Salon"].id]
    assert (reseau.seen, reseau.no_shows, reseau.rate, reseau.from_history) == (4, 1, 0.2, False)
    assert (salon.seen, salon.rate, salon.from_history, salon.name) == (0, 0.2, False, "Salon")
    # Before the recent lab only the old one counts: Mairie saw 6 people, too few.
    early = fc.source_no_show_rates(lab_afternoon(-20))
    assert (early[data["Mairie"].id].seen, early[data["Mairie"].id].from_history) == (6, False)


def test_source_conversion(data):
    conversion = fc.source_conversion(utcnow())
    assert conversion == pytest.approx(
        {data["Mairie"].id: 1.0, data["Affiche"].id: 2 / 3, data["Réseau"].id: 0.4}
    )


def test_forecast_expected_short_and_needed(data):
    lab = data["upcoming"]
    result = fc.forecast(lab)
    assert result.confirmed == 24
    assert result.expected == pytest.approx(17.0)
    assert result.expected_rounded == 17
    assert (result.target, result.capacity, result.days_left) == (30, 55, 20)
    assert result.short_by == 13
    # New confirmations come like the confirmed ones: 17 / 24 of them; 13 / (17/24) = 18.4.
    assert result.show_rate == pytest.approx(17 / 24)
    assert result.needed_confirmations == 19
    assert not result.on_track
    assert result.uses_default and result.default_rate == 0.2
    rows = {row.name: row for row in result.by_source}
    assert (rows["Mairie"].confirmed, rows["Mairie"].rate, rows["Mairie"].expected) == (8, 0.25, 6)
    assert rows["Affiche"].expected == pytest.approx(3)
    assert (rows["Salon"].from_history, rows["Salon"].expected) == (False, pytest.approx(4))
    assert result.summary == (
        "Prévision : 17 participants attendus pour un objectif de 30, dans 20 jours. "
        "Il manque environ 19 confirmations."
    )


def test_forecast_on_track_and_just_short(data):
    lab = data["upcoming"]
    lab.target = 17
    result = fc.forecast(lab)
    assert (result.on_track, result.short_by, result.needed_confirmations) == (True, 0, 0)
    assert result.summary.endswith("dans 20 jours. L'objectif devrait être atteint.")
    lab.target = 18
    result = fc.forecast(lab)
    assert (result.on_track, result.short_by, result.needed_confirmations) == (False, 1, 2)
    assert result.summary.endswith("Il manque environ 2 confirmations.")


def test_default_rate_from_the_settings(data, app, monkeypatch):
    monkeypatch.setitem(app.config, "FORECAST_DEFAULT_NO_SHOW", 0.4)
    result = fc.forecast(data["upcoming"])
    assert result.expected == pytest.approx(6 + 3 + 3 + 3)  # Salon and Réseau at 60 %
    assert result.default_rate == 0.4


def test_a_lab_without_confirmed_people_uses_the_default(data):
    lab = _lab("Vide", lab_afternoon(5), target=8)
    result = fc.forecast(lab)
    assert (result.confirmed, result.expected, result.by_source) == (0, 0, [])
    assert result.needed_confirmations == 10  # 8 / 0.8
    assert result.summary == (
        "Prévision : 0 participant attendu pour un objectif de 8, dans 5 jours. "
        "Il manque environ 10 confirmations."
    )


def test_people_checked_in_count_as_there(data):
    lab = data["upcoming"]
    for registration in lab_registrations(lab, "Mairie")[:2]:
        transition(registration, "attended", None)
    db.session.commit()
    result = fc.forecast(lab, now=lab.starts_at + timedelta(hours=1))
    assert result.expected == pytest.approx(17 - 2 * 0.75 + 2)
    assert (result.confirmed, result.days_left) == (24, 0)
    assert "aujourd'hui" in result.summary


def lab_registrations(lab: Lab, source_name: str) -> list[Registration]:
    return [
        r
        for r in db.session.query(Registration).filter_by(lab_id=lab.id).order_by(Registration.id)
        if r.prospect.source.name == source_name
    ]


def test_days_left_counts_paris_calendar_days(app_ctx):
    zone = local_zone()
    starts = datetime(2026, 3, 12, 14, 0, tzinfo=zone).astimezone(UTC)
    lab = Lab(title="L", starts_at=starts, ends_at=starts + timedelta(hours=4))
    eve = datetime(2026, 3, 11, 23, 30, tzinfo=zone)
    just_after_midnight = datetime(2026, 3, 12, 0, 30, tzinfo=zone)  # 23:30 UTC on the 11th
    assert just_after_midnight.astimezone(UTC).day == 11
    assert fc.days_left(lab, eve) == 1
    assert fc.days_left(lab, just_after_midnight) == 0
    assert fc.days_left(lab, starts + timedelta(days=2)) == 0
    # Across the change to summer time (29 March 2026): still calendar days.
    spring = datetime(2026, 4, 2, 9, 0, tzinfo=zone).astimezone(UTC)
    later = Lab(title="L", starts_at=spring, ends_at=spring + timedelta(hours=4))
    assert fc.days_left(later, datetime(2026, 3, 28, 23, 0, tzinfo=zone)) == 5


def test_to_call_first_orders_by_source_conversion(data):
    lab = data["upcoming"]
    base = utcnow() - timedelta(days=3)

    def waiting(name: str, minutes: int, steps: tuple[str, ...] = (), **fields) -> Registration:
        registration = _person(data[name], lab, steps, **fields)
        registration.created_at = base + timedelta(minutes=minutes)
        return registration

    salon = waiting("Salon", 0)
    b1 = waiting("Affiche", 1, ("contacted",))
    d1 = waiting("Réseau", 2)
    a2 = waiting("Mairie", 4, ("interested",))
    a1 = waiting("Mairie", 3)
    waiting("Mairie", 0).reached_at = utcnow()  # reached already
    waiting("Affiche", 0, qualification="no")  # not a potential user
    waiting("Mairie", 0, ("declined",))
    db.session.commit()
    expected = [a1.id, a2.id, b1.id, d1.id, salon.id]
    assert [r.id for r in fc.to_call_first(lab, limit=2)] == expected[:2]
    db.session.expunge_all()
    order = fc.to_call_first(db.session.get(Lab, lab.id))
    db.session.expunge_all()  # prospect and source came with the rows: no lazy load needed
    assert [r.id for r in order] == expected
    assert [r.prospect.source.name for r in order] == [
        "Mairie",
        "Mairie",
        "Affiche",
        "Réseau",
        "Salon",
    ]


def _event(
    registration: Registration, when: datetime, to: str, frm: str | None, lab_id: int = 0
) -> None:
    kind = "registration.created" if frm is None else "registration.status"
    db.session.add(
        Event(
            kind=kind,
            created_at=when,
            prospect_id=registration.prospect_id,
            lab_id=lab_id or registration.lab_id,
            registration_id=registration.id,
            from_status=frm,
            to_status=to,
        )
    )


def test_confirmations_over_time(app_ctx):
    zone = local_zone()
    source = Source(name="S")
    starts = datetime(2026, 3, 10, 14, 0, tzinfo=zone).astimezone(UTC)
    lab = _lab("L", starts)
    other = _lab("Autre", starts)
    people = []
    for _ in range(4):
        prospect = Prospect(source=source, phone=f"+33{next(_phones)}")
        db.session.add(prospect)
        db.session.flush()
        registration = Registration(prospect_id=prospect.id, lab_id=lab.id, status="to_contact")
        db.session.add(registration)
        db.session.flush()
        people.append(registration)
    a, b, c, d = people

    def at(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 3, day, hour, minute, tzinfo=zone)

    for person in people:
        _event(person, at(1, 9), "to_contact", None)
    # a confirms on the 2nd, declines on the 3rd, confirms again on the 5th.
    _event(a, at(2, 10), "confirmed", "to_contact")
    _event(a, at(3, 11), "declined", "confirmed")
    _event(a, at(5, 12), "confirmed", "declined")
    # b confirms at 00:30 Paris on the 3rd (23:30 UTC on the 2nd), is checked in on the day.
    _event(b, at(3, 0, 30), "confirmed", "to_contact")
    _event(b, at(10, 14), "attended", "confirmed")
    # c confirms and cancels on the same day: never counted at the end of a day.
    _event(c, at(4, 9), "confirmed", "contacted")
    _event(c, at(4, 18), "cancelled", "confirmed")
    # d goes to the waiting list, then gets a place on the 6th, and does not come.
    _event(d, at(4, 10), "waitlisted", "to_contact")
    _event(d, at(6, 10), "confirmed", "waitlisted")
    _event(d, at(10, 20), "no_show", "confirmed")
    # Another lab's confirmation is not counted.
    _event(a, at(4, 10), "confirmed", "to_contact", lab_id=other.id)
    db.session.commit()
    series = fc.confirmations_over_time(lab, now=at(20, 12))
    assert series == [
        (date(2026, 3, 2), 1),
        (date(2026, 3, 3), 1),  # a declined, b confirmed
        (date(2026, 3, 4), 1),
        (date(2026, 3, 5), 2),
        (date(2026, 3, 6), 3),
        (date(2026, 3, 7), 3),
        (date(2026, 3, 8), 3),
        (date(2026, 3, 9), 3),
        (date(2026, 3, 10), 3),
    ]
    # Before the lab day, the series stops today.
    assert fc.confirmations_over_time(lab, now=at(7, 12))[-1] == (date(2026, 3, 7), 3)
    assert fc.confirmations_over_time(other, now=at(20, 12)) == [
        (date(2026, 3, day), 1) for day in range(4, 11)
    ]
    assert fc.confirmations_over_time(_lab("Vide", starts)) == []
