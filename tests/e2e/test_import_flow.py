"""A manager imports a CSV file in a real Chromium: upload → mapping → result → download."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from crm.extensions import db
from crm.models import Consent, Prospect
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

CSV = (
    "Prénom;Nom;Portable;Courriel;Structure;Commentaire\r\n"
    "Léa;Martin;06 12 34 56 78;lea@exemple.fr;Préfecture du Rhône;Vue au salon\r\n"
    "Œdipe;Lefèvre;07 98 76 54 32;;CAF de la Réunion;\r\n"
    "Sans;Contact;12 34;;Mairie;\r\n"
)


@pytest.fixture
def manager_page(page, live_server, make_user):  # type: ignore[no-untyped-def]
    user = make_user("manager")
    page.goto(f"{live_server}/connexion")
    page.get_by_label("Adresse e-mail").fill(user.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bonjour")
    return page


def test_upload_mapping_result(manager_page, live_server, app, tmp_path):
    page = manager_page
    path = tmp_path / "participants.csv"
    path.write_bytes(CSV.encode("cp1252"))

    page.get_by_role("link", name="Importer").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Importer des prospects")
    page.get_by_label("Fichier CSV").set_input_files(str(path))
    page.get_by_role("button", name="Envoyer le fichier").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Vérifier et associer les colonnes")
    expect(page.get_by_role("table")).to_contain_text("Œdipe")
    expect(page.get_by_role("table")).to_contain_text("CAF de la Réunion")
    expect(page.get_by_label("Champ pour la colonne « Prénom »")).to_have_value("first_name")
    expect(page.get_by_label("Champ pour la colonne « Portable »")).to_have_value("phone")
    expect(page.get_by_label("Champ pour la colonne « Courriel »")).to_have_value("email")
    page.get_by_label("Champ pour la colonne « Commentaire »").select_option("")
    page.get_by_label("Source des personnes importées").select_option("nouvelle")
    page.get_by_label("Nom de la nouvelle source").fill("Forum des services publics")
    page.locator("label", has_text=re.compile("^SMS$")).click()  # DSFR: the label is the box
    expect(page.get_by_label("SMS")).to_be_checked()
    page.get_by_label("Base légale de la prise de contact").select_option("consent")
    page.get_by_label("Champ pour la colonne « Prénom »").focus()
    page.keyboard.press("Tab")  # keyboard: from one column's select to the next
    expect(page.get_by_label("Champ pour la colonne « Nom »")).to_be_focused()
    page.get_by_role("button", name="Importer 3 lignes").click()

    expect(page.get_by_role("heading", name="Import terminé")).to_be_visible()
    expect(page.locator("#compteur-crees")).to_have_text("2")
    expect(page.locator("#compteur-fusionnes")).to_have_text("0")
    expect(page.locator("#compteur-rejetes")).to_have_text("1")
    rejected = page.get_by_role("table")
    expect(rejected).to_contain_text("Sans;Contact;12 34;;Mairie;")
    expect(rejected).to_contain_text("Numéro de téléphone illisible et aucune adresse e-mail.")
    font = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert "Marianne" in font

    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile("Télécharger les lignes rejetées")).click()
    content = open(info.value.path(), "rb").read()  # noqa: SIM115
    assert content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][-2:] == ["ligne", "motif"] and rows[1][-2] == "4"

    with app.app_context():
        lea = db.session.scalar(sa.select(Prospect).where(Prospect.email == "lea@exemple.fr"))
        assert lea.notes == "" and lea.allow_sms and not lea.allow_email
        assert lea.source.name == "Forum des services publics"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Consent)) == 2


def test_a_too_large_file_is_stopped_before_sending(
    manager_page, live_server, app, tmp_path, monkeypatch
):
    page = manager_page
    monkeypatch.setitem(app.config, "IMPORT_MAX_BYTES", 1000)
    path = tmp_path / "gros.csv"
    path.write_bytes((CSV * 40).encode("utf-8"))
    page.goto(f"{live_server}/imports/nouveau")
    page.get_by_label("Fichier CSV").set_input_files(str(path))
    error = page.locator("#file-erreur")
    expect(error).to_be_visible()
    expect(error).to_contain_text("dépasse la taille maximale autorisée (1 ko)")
    expect(page.get_by_label("Fichier CSV")).to_have_attribute("aria-describedby", "file-erreur")
    page.get_by_role("button", name="Envoyer le fichier").click()
    expect(page.get_by_label("Fichier CSV")).to_be_focused()
    assert page.url.endswith("/imports/nouveau")

    small = tmp_path / "petit.csv"
    small.write_bytes(CSV.encode("utf-8")[:900])
    page.get_by_label("Fichier CSV").set_input_files(str(small))
    expect(error).to_have_count(0)  # a new file: the old message goes away
