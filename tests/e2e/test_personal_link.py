"""A person on a phone (Chromium at 360×740) opens their personal link, sees the lab and
taps "Je confirme ma présence": the page says so and the registration is confirmed."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from crm.extensions import db
from crm.models import Lab, Prospect, Registration, Source
from crm.services import registrations, sequences
from crm.timeutil import from_local, utcnow
from tests.e2e.test_login import assert_dsfr_is_applied

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}


def _invited(app) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """A lab in 20 days, 09:30-13:30 Paris time, and one invited person: (id, link path)."""
    with app.app_context():
        day = (utcnow() + timedelta(days=20)).date()
        lab = Lab(
            title="Simplifier la déclaration",
            venue="20 avenue de Ségur, 75007 Paris",
            starts_at=from_local(datetime.combine(day, time(9, 30))),
            ends_at=from_local(datetime.combine(day, time(13, 30))),
            status="recruiting",
        )
        prospect = Prospect(
            source=Source(name="Annuaire"),
            first_name="Léa",
            phone="+33612345678",
            allow_sms=True,
        )
        db.session.add_all([lab, prospect])
        db.session.flush()
        registration, _ = registrations.register(prospect, lab, None)
        db.session.commit()
        return registration.id, urlsplit(sequences.personal_link(registration.id)).path


def test_a_person_confirms_from_their_phone(page, live_server, app):
    registration_id, path = _invited(app)
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server}{path}")

    expect(page.get_by_role("heading", level=1)).to_have_text("Simplifier la déclaration")
    expect(page.get_by_text("de 09:30 à 13:30")).to_be_visible()
    expect(page.get_by_text("Demi-journée, atelier en petits groupes")).to_be_visible()
    expect(page.get_by_role("link", name="Voir sur une carte (OpenStreetMap)")).to_be_visible()
    expect(page.get_by_role("link", name="Ajouter à mon agenda (fichier .ics)")).to_be_visible()
    assert_dsfr_is_applied(page)
    # Mobile first: nothing wider than the phone, the buttons use the full width.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    confirm = page.get_by_role("button", name="Je confirme ma présence")
    for name in ("Je confirme ma présence", "Je ne pourrai pas venir", "Ne plus me contacter"):
        box = page.get_by_role("button", name=name).bounding_box()
        assert box is not None and box["width"] >= PHONE["width"] - 80, (name, box)

    confirm.click()

    expect(page.get_by_text("Merci ! Votre présence est confirmée.")).to_be_visible()
    expect(page.get_by_text("Vous avez confirmé votre présence.")).to_be_visible()
    assert urlsplit(page.url).path == path
    with app.app_context():
        assert db.session.get(Registration, registration_id).status == "confirmed"
