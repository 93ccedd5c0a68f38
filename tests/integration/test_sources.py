"""Source pages: managers list, create and edit; names are unique whatever the case."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.models import Prospect, Source
from crm.services.labs import LabError, save_source
from tests.conftest import csrf_token


def post(client, url: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post(url, data={**data, "csrf_token": csrf_token(client, "/sources/")})


def make_source(app, name: str, prospects: int = 0) -> int:  # type: ignore[no-untyped-def]
    with app.app_context():
        source = Source(name=name)
        db.session.add(source)
        for i in range(prospects):
            db.session.add(Prospect(first_name=f"P{i}", phone=f"+3361111{i:04d}", source=source))
        db.session.commit()
        return source.id


def test_manager_creates_a_source_and_sees_it_with_its_prospect_count(app, manager_client):
    response = post(
        manager_client,
        "/sources/nouvelle",
        {"name": "  Réseau   France Services ", "description": "Conseillers volontaires."},
    )
    assert response.status_code == 302
    with app.app_context():
        source = db.session.scalar(sa.select(Source))
        assert source.name == "Réseau France Services"
        assert source.description == "Conseillers volontaires."
    make_source(app, "Annuaire de la préfecture", prospects=3)
    html = manager_client.get("/sources/").get_data(as_text=True)
    assert "Réseau France Services" in html and "Conseillers volontaires." in html
    assert "Annuaire de la préfecture" in html
    assert 'title="Voir les 3 prospects de la source Annuaire de la préfecture">3</a>' in html


@pytest.mark.parametrize("name", ["Annuaire", "annuaire", " ANNUAIRE "])
def test_a_duplicate_name_gets_a_clear_french_message(app, manager_client, name):
    make_source(app, "Annuaire")
    response = post(manager_client, "/sources/nouvelle", {"name": name, "description": ""})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Une source s&#39;appelle déjà" in html
    assert 'aria-describedby="name-erreur"' in html
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Source)) == 1


def test_edit_renames_and_refuses_another_sources_name(app, manager_client):
    first = make_source(app, "Annuaire")
    second = make_source(app, "Salon")
    form = manager_client.get(f"/sources/{second}/modifier").get_data(as_text=True)
    assert 'value="Salon"' in form
    ok = post(manager_client, f"/sources/{second}/modifier", {"name": "Salon des maires"})
    assert ok.status_code == 302
    # Keeping its own name (in another case) is fine.
    same = post(manager_client, f"/sources/{first}/modifier", {"name": "ANNUAIRE"})
    assert same.status_code == 302
    clash = post(manager_client, f"/sources/{first}/modifier", {"name": "salon des maires"})
    assert clash.status_code == 400
    with app.app_context():
        assert db.session.get(Source, first).name == "ANNUAIRE"
        assert db.session.get(Source, second).name == "Salon des maires"


def test_a_missing_name_is_refused_in_french(manager_client):
    response = post(manager_client, "/sources/nouvelle", {"name": " ", "description": "x"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Saisissez le nom de la source." in html
    summary = html.split('id="erreurs-formulaire"', 1)[1].split("</div>", 1)[0]
    assert '<a href="#name">' in summary and "<title>Erreur : " in html


def test_the_service_refuses_duplicates_without_http(app_ctx):
    save_source(None, "Annuaire", "")
    db.session.commit()
    with pytest.raises(LabError, match="s'appelle déjà"):
        save_source(None, "annuaire", "")


@pytest.mark.parametrize("url", ["/sources/", "/sources/nouvelle", "/sources/{id}/modifier"])
def test_callers_cannot_manage_sources(app, caller_client, url):
    source_id = make_source(app, "Annuaire")
    assert caller_client.get(url.format(id=source_id)).status_code == 403
    response = post(caller_client, url.format(id=source_id), {"name": "Autre"})
    assert response.status_code in (403, 405)
    with app.app_context():
        assert db.session.get(Source, source_id).name == "Annuaire"


def test_sources_are_in_the_managers_menu(manager_client):
    assert 'href="/sources/"' in manager_client.get("/").get_data(as_text=True)


def test_sources_are_not_in_the_callers_menu(caller_client):
    home = caller_client.get("/").get_data(as_text=True)
    assert 'href="/sources/"' not in home
    assert 'href="/labs/"' in home and 'href="/prospects/"' in home


def test_unknown_source_is_a_404(manager_client):
    assert manager_client.get("/sources/999/modifier").status_code == 404
