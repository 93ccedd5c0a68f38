"""A manager in a real Chromium: personalises the invitation, edits its first SMS, sees the
preview with a real person and the segment count (live while typing, then from the server)."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from crm.extensions import db
from crm.models import Lab, Sequence
from crm.services.demo import seed_demo
from tests.e2e.test_login import MANAGER, assert_dsfr_is_applied, log_in

pytestmark = pytest.mark.browser

BODY = "Bonjour {prenom}, une fête au lab {lab} le {date} ! L'équipe Open Lab : {lien}"


def test_manager_personalises_the_invitation_and_edits_its_first_sms(page, live_server, app):
    with app.app_context():
        password = seed_demo()[MANAGER]
        lab_id = db.session.scalar(sa.select(Lab.id).order_by(Lab.id))
    log_in(page, live_server, MANAGER, password)
    page.goto(f"{live_server}/labs/{lab_id}/sequences/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Relances de l'open lab")
    assert_dsfr_is_applied(page)
    expect(page.get_by_text("Personne ne peut répondre aux SMS")).to_be_visible()

    page.get_by_role("button", name="Personnaliser pour cet open lab : Invitation").click()
    expect(
        page.get_by_text("Séquence « Invitation » personnalisée pour cet open lab")
    ).to_be_visible()
    page.get_by_role("link", name="Modifier l'étape 1 : Invitation").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Invitation — étape 1")
    expect(page.locator("#apercu-pour")).to_contain_text("Aperçu pour ")

    body = page.get_by_label("Texte du message")
    body.fill(BODY)
    # The counter follows the typing: "ê" is outside GSM-7, the SMS switches to UCS-2.
    counter = page.locator("#compteur-sms")
    expect(counter).to_contain_text("UCS-2")
    expect(counter).to_contain_text(re.compile(r"\d+ caractères, UCS-2, \d segments?"))

    page.get_by_label("Nombre de jours après l'inscription").fill("2")
    page.get_by_role("button", name="Enregistrer l'étape").click()

    expect(page.get_by_text("Étape 1 enregistrée")).to_be_visible()
    figures = page.locator("#chiffres-sms")
    expect(figures).to_contain_text("UCS-2")
    expect(figures).to_contain_text(re.compile(r"Segments\s*\d+"))
    expect(page.get_by_text("« ê » → « e »")).to_be_visible()
    name = page.locator("#prospect option:checked").inner_text()
    first_name = name.split()[0]
    expect(page.locator("blockquote")).to_contain_text(f"Bonjour {first_name}, une fête au lab")
    # The live counter and the server agree.
    live = re.search(r"(\d+) caractères, UCS-2, (\d+) segment", counter.inner_text())
    assert live is not None
    expect(figures).to_contain_text(f"{live.group(1)} caractères")

    with app.app_context():
        sequence = db.session.scalar(
            sa.select(Sequence).where(Sequence.lab_id == lab_id, Sequence.kind == "invitation")
        )
        assert sequence.steps[0].body == BODY
        assert sequence.steps[0].offset_minutes == 2 * 24 * 60
