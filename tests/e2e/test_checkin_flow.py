"""Check-in on a phone (Chromium at 375×667): a caller at the door searches as they type, taps
"Présent·e", sees the count go up, cannot check the same person in twice, and registers a
walk-in."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from crm.extensions import db
from crm.models import Lab, Registration, Source
from crm.services import prospects, registrations
from crm.timeutil import utcnow
from tests.conftest import PASSWORD
from tests.e2e.test_login import assert_dsfr_is_applied, log_in

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 667}
PEOPLE = [
    ("Éloïse", "Dupré", "Mairie de Lyon", "0611111111"),
    ("Marc", "Durand", "CAF du Rhône", "0622222222"),
    ("Nadia", "Benali", "France Travail", "0633333333"),
]


def _lab_today(app) -> int:  # type: ignore[no-untyped-def]
    """A lab that started an hour ago with three confirmed people: its id."""
    with app.app_context():
        lab = Lab(
            title="Simplifier la déclaration",
            starts_at=utcnow() - timedelta(hours=1),
            ends_at=utcnow() + timedelta(hours=3),
            status="closed",
        )
        source = Source(name="Annuaire")
        db.session.add_all([lab, source])
        db.session.flush()
        for first, last, organisation, phone in PEOPLE:
            person = prospects.ProspectInput(
                first_name=first, last_name=last, organisation=organisation, phone=phone
            )
            prospect, _ = prospects.save(person, source, None)
            registration, _ = registrations.register(prospect, lab, None)
            registrations.transition(registration, "confirmed", None)
        db.session.commit()
        return lab.id


def test_check_in_on_a_phone(page, live_server, app, make_user):  # type: ignore[no-untyped-def]
    lab_id = _lab_today(app)
    caller = make_user("caller", "accueil@test.fr")
    page.set_viewport_size(PHONE)
    log_in(page, live_server, caller.email, PASSWORD)
    url = f"{live_server}/labs/{lab_id}/accueil/"
    # A second tablet at the door, with the list loaded before anyone taps.
    other = page.context.new_page()
    other.set_viewport_size(PHONE)
    other.goto(f"{url}?q=dupre")
    page.goto(url)

    expect(page.get_by_role("heading", level=1)).to_have_text("Accueil des participants")
    assert_dsfr_is_applied(page)
    count = page.locator("#checkin-compte")
    expect(count).to_contain_text("Présent·es : 0 sur 3 attendu·es")
    people = page.locator("#checkin-liste > li")
    expect(people).to_have_count(3)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # Search as you type: the list narrows without a page load, the focus stays in the box.
    search = page.get_by_label("Rechercher une personne")
    expect(search).to_be_focused()
    page.evaluate("window.sameDocument = true")
    search.press_sequentially("elo", delay=60)
    expect(people).to_have_count(1)
    expect(people.first).to_contain_text("Éloïse Dupré")
    expect(people.first).to_contain_text("Mairie de Lyon")
    expect(page.locator("#checkin-annonce")).to_contain_text("1 personne pour « elo »")
    assert page.evaluate("window.sameDocument") is True
    expect(search).to_be_focused()

    present = page.get_by_role("button", name="Présent·e : Éloïse Dupré")
    box = present.bounding_box()
    assert box is not None and box["height"] >= 44, box  # a thumb-sized target
    present.click()

    expect(count).to_contain_text("Présent·es : 1 sur 3 attendu·es")
    expect(page.locator("#checkin-annonce")).to_contain_text(
        re.compile(r"Éloïse Dupré est enregistré·e présent·e à \d\d:\d\d\.")
    )
    expect(page.get_by_role("button", name="Présent·e : Éloïse Dupré")).to_have_count(0)
    expect(page.get_by_role("button", name="Annuler la présence de Éloïse Dupré")).to_be_visible()
    expect(people.first).to_contain_text(re.compile(r"Présent·e à \d\d:\d\d"))
    expect(search).to_be_focused()
    assert page.evaluate("window.sameDocument") is True

    # The other tablet still shows the button: its tap is a no-op that says so.
    other.get_by_role("button", name="Présent·e : Éloïse Dupré").click()
    expect(other.locator("#checkin-annonce")).to_contain_text(
        re.compile(r"Éloïse Dupré : déjà enregistré·e à \d\d:\d\d\.")
    )
    expect(other.locator("#checkin-compte")).to_contain_text("Présent·es : 1 sur 3")

    # A walk-in: registered and checked in on the spot.
    page.get_by_role("link", name="Inscrire une personne sur place").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Inscrire une personne sur place")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.get_by_label("Prénom").fill("Inès")
    page.locator("#last_name").fill("Nouvelle")
    page.get_by_label("Structure").fill("Conseil départemental")
    page.get_by_label("Téléphone (facultatif)").fill("06 98 76 54 32")
    page.get_by_role("button", name="Inscrire et enregistrer présent·e").click()

    expect(page.get_by_text(re.compile(r"Inscription sur place : Inès Nouvelle"))).to_be_visible()
    expect(count).to_contain_text("Présent·es : 2 sur 4 attendu·es")
    expect(people).to_have_count(1)
    expect(people.first).to_contain_text("Inès Nouvelle")
    with app.app_context():
        statuses = sorted(r.status for r in db.session.query(Registration).all())
        assert statuses == ["attended", "attended", "confirmed", "confirmed"]
