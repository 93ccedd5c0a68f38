"""The footer's legal pages: public, linked from every page (the personal link page too),
filled from the settings, honest about accessibility (no audit: "non conforme")."""

from __future__ import annotations

import html

import pytest

from tests.factories import person
from tests.integration.test_personal_links import path_of

PAGES = {
    "/accessibilite": "Déclaration d'accessibilité",
    "/mentions-legales": "Mentions légales",
    "/donnees-personnelles": "Données personnelles",
}


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


@pytest.mark.parametrize("url,title", PAGES.items())
def test_the_legal_pages_are_public(client, url, title):
    response = client.get(url)
    assert response.status_code == 200
    page = text(response)
    assert f"<h1>{title}</h1>" in page and f"<title>{title} — Open Lab CRM</title>" in page


def test_every_footer_links_to_them_including_the_personal_link_page(client, world):
    invited = person(world, allow_sms=True)
    for page in (text(client.get("/connexion")), text(client.get(path_of(invited)))):
        for url in PAGES:
            assert f'href="{url}"' in page
        assert "Accessibilité : non conforme" in page


def test_they_name_the_publisher_the_contact_and_the_rules_in_force(app, client):
    app.config.update(
        CRM_PUBLISHER="Direction du numérique de l'exemple",
        CRM_CONTACT_EMAIL="openlab@exemple.gouv.fr",
        CRM_HOSTING="Hébergeur Exemple, 1 rue de l'Exemple, 75000 Paris",
        PRESSURE_CAP_MESSAGES=3,
        RETENTION_DAYS=730,
    )
    try:
        notice = text(client.get("/mentions-legales"))
        data = text(client.get("/donnees-personnelles"))
        statement = text(client.get("/accessibilite"))
    finally:
        app.config.update(
            CRM_PUBLISHER="", CRM_CONTACT_EMAIL="", CRM_HOSTING="", PRESSURE_CAP_MESSAGES=4
        )
        app.config["RETENTION_DAYS"] = 1095
    assert "Direction du numérique de l'exemple" in notice
    assert "Hébergeur Exemple, 1 rue de l'Exemple" in notice
    assert 'href="mailto:openlab@exemple.gouv.fr"' in data
    assert "Au plus 3 messages automatiques" in data and "anonymisées 2 ans après" in data
    assert "aucun audit de conformité n'a encore été réalisé" in statement
    assert "Défenseur des droits" in statement


def test_without_settings_they_point_to_the_team_and_hide_the_host(client):
    notice = text(client.get("/mentions-legales"))
    assert "édité et utilisé par Open Lab" in notice
    assert "Hébergement" not in notice
    assert "l'équipe qui vous a contacté·e" in notice
