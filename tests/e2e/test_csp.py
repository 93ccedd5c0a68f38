"""The Content-Security-Policy in a real Chromium: the DSFR pages render (Marianne font, the
DSFR script ran), the page scripts work, and the browser reports no CSP violation and no
console error on the main pages."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from crm.extensions import db
from crm.models import Lab, Registration
from crm.services import sequences
from tests.e2e.test_login import MANAGER, assert_dsfr_is_applied, log_in, passwords  # noqa: F401

pytestmark = pytest.mark.browser

# Every CSP violation the page sees, kept on window (the init script runs before the page's).
LISTEN = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline") +
                              " " + (e.sourceFile || "") + ":" + e.lineNumber);
});
"""


@pytest.fixture
def watched(page):  # type: ignore[no-untyped-def]
    """The page, with a list of the console errors and warnings it logs."""
    problems: list[str] = []
    page.add_init_script(LISTEN)
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}")
            if msg.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    return page, problems


def _visit(page, url: str, problems: list[str]) -> None:  # type: ignore[no-untyped-def]
    page.goto(url)
    page.wait_for_load_state("networkidle")
    assert_dsfr_is_applied(page)
    violations = page.evaluate("window.__cspViolations || []")
    assert violations == [], (url, violations)
    assert problems == [], (url, problems)


def _ids(app) -> dict[str, object]:  # type: ignore[no-untyped-def]
    with app.app_context():
        lab = db.session.scalars(sa.select(Lab).order_by(Lab.id)).first()
        registration = db.session.scalars(
            sa.select(Registration).where(Registration.lab_id == lab.id).order_by(Registration.id)
        ).first()
        step = sequences.default_sequence("invitation").steps[0]
        db.session.commit()
        link = sequences.personal_link(registration.id)
        return {"lab": lab.id, "step": step.id, "link": link.split("/r/", 1)[1]}


def test_the_main_pages_break_no_csp_rule(watched, live_server, app, passwords):  # noqa: F811
    page, problems = watched
    ids = _ids(app)
    _visit(page, f"{live_server}/connexion", problems)
    log_in(page, live_server, MANAGER, passwords[MANAGER])
    expect(page.get_by_text("Espace responsable")).to_be_visible()
    lab = f"{live_server}/labs/{ids['lab']}"
    for url in (
        f"{live_server}/",
        lab,
        f"{lab}/accueil/",
        f"{lab}/groupes/",
        f"{lab}/relances/",
        f"{lab}/sequences/",
        f"{lab}/sequences/etapes/{ids['step']}",
        f"{live_server}/tableau-de-bord/?lab={ids['lab']}",
        f"{live_server}/mon-compte/mot-de-passe",
    ):
        _visit(page, url, problems)

    # The check-in script (static/checkin.js) still searches as one types.
    _visit(page, f"{lab}/accueil/", problems)
    page.get_by_label("Rechercher une personne").fill("zzzz-personne")
    expect(page).to_have_url(f"{lab}/accueil/?q=zzzz-personne")
    assert page.evaluate("window.__cspViolations") == [] and problems == []

    # The dashboard draws its charts (Chart.js sets canvas styles through the CSSOM).
    _visit(page, f"{live_server}/tableau-de-bord/?lab={ids['lab']}", problems)
    assert page.locator("canvas").count() > 0

    # The personal link page, as the invited person sees it (no session).
    page.context.clear_cookies()
    _visit(page, f"{live_server}/r/{ids['link']}", problems)
    expect(page.get_by_role("heading", level=1)).to_be_visible()
