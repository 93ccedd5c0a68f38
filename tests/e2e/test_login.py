"""Logging in with a real Chromium: the manager lands on their home page, styled by the DSFR."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from crm.services.demo import seed_demo

MANAGER = "responsable@demo.open-lab.fr"

pytestmark = pytest.mark.browser


@pytest.fixture
def passwords(app) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with app.app_context():
        return seed_demo()


@pytest.fixture
def failed_requests(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Every request the page made that failed (a blocked stylesheet) or answered an error."""
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(f"failed: {request.url}"))
    page.on(
        "response",
        lambda response: (
            failed.append(f"{response.status}: {response.url}") if response.status >= 400 else None
        ),
    )
    return failed


def log_in(page, live_server: str, email: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{live_server}/")
    assert re.search(r"/connexion\b", page.url), f"not redirected to the login page: {page.url}"
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()


def assert_dsfr_is_applied(page) -> None:  # type: ignore[no-untyped-def]
    """The DSFR stylesheet (Marianne font) and its script (data-fr-js on <html>) are loaded."""
    font = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert "Marianne" in font, f"DSFR stylesheet not applied: font-family is {font}"
    expect(page.locator("html")).to_have_attribute("data-fr-js", "true")


def test_manager_logs_in_and_sees_their_home(page, live_server, passwords, failed_requests):
    log_in(page, live_server, MANAGER, passwords[MANAGER])

    expect(page.get_by_role("heading", level=1)).to_have_text("Bonjour Camille Responsable")
    expect(page.get_by_text("Espace responsable")).to_be_visible()
    assert page.url.rstrip("/") == live_server
    assert_dsfr_is_applied(page)

    failed_requests.clear()
    page.reload(wait_until="networkidle")
    assert not failed_requests, failed_requests


def test_wrong_password_is_refused(page, live_server, passwords):
    log_in(page, live_server, MANAGER, passwords[MANAGER] + "-faux")

    expect(page.get_by_role("alert")).to_contain_text("Adresse e-mail ou mot de passe incorrect.")
    expect(page.get_by_label("Adresse e-mail")).to_have_value(MANAGER)
    assert "/connexion" in page.url
    assert_dsfr_is_applied(page)


def test_the_login_page_loads_every_asset_without_an_account(page, live_server, failed_requests):
    page.goto(f"{live_server}/connexion", wait_until="networkidle")
    assert_dsfr_is_applied(page)
    assert not failed_requests, failed_requests
