"""A caller in a real Chromium: next call, "interested" by keyboard, lands on the next person."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from crm.extensions import db
from crm.models import Call, Registration
from crm.services.demo import seed_demo
from tests.e2e.test_login import assert_dsfr_is_applied, log_in

CALLER = "appelant1@demo.open-lab.fr"

pytestmark = pytest.mark.browser


def test_caller_takes_the_next_call_logs_interested_and_lands_on_the_next(page, live_server, app):
    with app.app_context():
        password = seed_demo()[CALLER]
    log_in(page, live_server, CALLER, password)
    page.get_by_role("link", name="Appels").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Appels")
    page.get_by_role("button", name="Prochain appel").click()

    expect(page).to_have_url(re.compile(r"/appels/inscriptions/\d+$"))
    first_url = page.url
    expect(page.get_by_text("une séance de travail en petits groupes")).to_be_visible()
    assert_dsfr_is_applied(page)

    # Keyboard only: the notes field has the focus; Tab past the two consent boxes.
    expect(page.get_by_label("Notes de l'appel")).to_be_focused()
    page.keyboard.type("Intéressée, veut venir avec une collègue")
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # accepts SMS
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Intéressé·e (envoyer les infos)")).to_be_focused()
    page.keyboard.press("Enter")

    expect(page.get_by_text("Appel enregistré : Intéressé·e.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/appels/inscriptions/\d+$"))
    assert page.url != first_url
    first_id = int(first_url.rsplit("/", 1)[1])
    with app.app_context():
        assert db.session.get(Registration, first_id).status == "interested"
        call = db.session.scalar(sa.select(Call))
        assert call.notes == "Intéressée, veut venir avec une collègue"
        assert call.registration_id == first_id
