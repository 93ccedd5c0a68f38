"""A manager opens the dashboard in a real Chromium: Chart.js (from node_modules) draws the
three charts, each with its table beside it, and every asset loads."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from crm.extensions import db
from crm.models import Call, Lab, Registration, User
from crm.services.demo import seed_demo
from crm.services.registrations import transition
from tests.e2e.test_login import assert_dsfr_is_applied, log_in

MANAGER = "responsable@demo.open-lab.fr"
CALLER = "appelant1@demo.open-lab.fr"

pytestmark = pytest.mark.browser


@pytest.fixture
def demo(app) -> dict:  # type: ignore[no-untyped-def]
    """The demo data set, with five people called and three of them confirmed."""
    with app.app_context():
        passwords = seed_demo()
        caller = db.session.scalar(sa.select(User).where(User.email == CALLER))
        lab = db.session.scalar(sa.select(Lab))
        registrations = db.session.scalars(sa.select(Registration).order_by(Registration.id))
        for i, registration in enumerate(list(registrations)[:5]):
            db.session.add(
                Call(
                    prospect_id=registration.prospect_id,
                    lab_id=registration.lab_id,
                    registration_id=registration.id,
                    caller_id=caller.id,
                    outcome="confirmed" if i < 3 else "no_answer",
                )
            )
            if i < 3:
                transition(registration, "confirmed", None, "test")
        db.session.commit()
        return {"passwords": passwords, "lab_id": lab.id}


def test_the_manager_sees_the_charts_and_their_tables(page, live_server, demo):
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(f"failed: {request.url}"))
    page.on(
        "response",
        lambda response: (
            failed.append(f"{response.status}: {response.url}") if response.status >= 400 else None
        ),
    )
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_server, MANAGER, demo["passwords"][MANAGER])
    page.get_by_role("link", name="Tableau de bord").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Tableau de bord")
    page.get_by_label("Open lab", exact=True).select_option(str(demo["lab_id"]))
    page.get_by_role("button", name="Afficher").click()
    expect(page.get_by_role("heading", name="Prévision — Prendre rendez-vous")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert_dsfr_is_applied(page)

    assert page.evaluate("typeof window.Chart") == "function", "Chart.js not loaded"
    canvases = page.locator("canvas[data-chart]")
    expect(canvases).to_have_count(3)
    drawn = page.evaluate(
        """() => Array.from(document.querySelectorAll("canvas[data-chart]")).map((canvas) => {
            const chart = window.Chart.getChart(canvas);
            return [canvas.dataset.chart, chart ? chart.config.type : null,
                    canvas.getAttribute("role"), canvas.getAttribute("aria-label"),
                    canvas.width > 0 && canvas.height > 0];
        })"""
    )
    assert [(name, kind) for name, kind, *_ in drawn] == [
        ("funnel", "bar"),
        ("conversion", "bar"),
        ("confirmations", "line"),
    ]
    for name, _, role, label, sized in drawn:
        assert role == "img" and label and sized, name
    funnel_label = page.locator('canvas[data-chart="funnel"]').get_attribute("aria-label")
    assert "Invités 60" in funnel_label and "Confirmés 3" in funnel_label

    for caption in (
        "Données du graphique : personnes à chaque étape (total)",
        "Données du graphique : confirmés sur invités par source",
        "Données du graphique : confirmés chaque jour, face à l'objectif",
    ):
        table = page.locator("table", has=page.locator("caption", has_text=caption))
        expect(table).to_be_visible()
    funnel_table = page.locator(
        "table", has=page.locator("caption", has_text="Données du graphique : personnes à chaque")
    )
    expect(funnel_table.get_by_role("row", name="Confirmés", exact=False).last).to_contain_text("3")
    expect(
        page.get_by_role("heading", name=re.compile(r"^Il manque \d+ confirmations$"))
    ).to_be_visible()
    to_call = page.locator("table", has=page.locator("caption", has_text="à appeler en priorité"))
    expect(to_call.get_by_role("link", name=re.compile("^Appeler"))).to_have_count(20)

    # A figure leads to its people.
    page.get_by_role("link", name="confirmés — Total : voir les personnes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirmés — Total")
    expect(page.get_by_text("3 inscriptions")).to_be_visible()
    assert not errors, errors
    assert not failed, failed
