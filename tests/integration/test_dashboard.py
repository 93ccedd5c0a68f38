"""The dashboard pages over HTTP, on the hand-built funnel data set of test_funnel.py: known
figures, the people behind each figure, CSV exports, the lab forecast, French messages for bad
filters, and who sees what."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.models import AuditEntry, User
from crm.services.funnel import STEPS
from tests.conftest import login
from tests.factories import person
from tests.integration.test_funnel import data  # noqa: F401  (the fixture)

URL = "/tableau-de-bord/"
LINK = re.compile(r'href="(/tableau-de-bord/personnes\?[^"]+)"[^>]*>([\d\u202f\xa0 ]+)<')


@pytest.fixture
def named(data):  # noqa: F811
    """The data set, each person with a distinct name."""
    for key, registration in data.items():
        if key.startswith("p") and "_" not in key:
            registration.prospect.last_name = key.upper()
    db.session.commit()
    return data


def _text(response) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(response.get_data(as_text=True))


def figures(page: str) -> dict[tuple[str, str], tuple[int, str]]:
    """(key, step) → (the count shown, the link to its people), from the funnel table."""
    found = {}
    funnel_table = page.split('id="titre-indicateurs"', 1)[0]
    for href, text in LINK.findall(funnel_table):
        url = html.unescape(href)
        args = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        found[(args["key"], args["step"])] = (int(re.sub(r"\D", "", text)), url)
    return found


def row(found, key) -> list[int]:
    return [found[(str(key), step)][0] for step in STEPS]


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "text/csv"
    assert response.data.startswith(b"\xef\xbb\xbf"), "UTF-8 BOM for French Excel"
    text = response.data.decode("utf-8-sig")
    assert ";" in text.splitlines()[0]
    return list(csv.reader(io.StringIO(text), delimiter=";"))


def charts_of(page: str) -> dict:
    match = re.search(
        r'<script type="application/json" id="donnees-graphiques">(.*?)</script>', page
    )
    assert match, "no chart data island"
    return json.loads(match.group(1))


def test_the_manager_sees_the_funnel_per_source_with_its_rates(named, manager_client):
    response = manager_client.get(URL)
    page = _text(response)
    assert response.status_code == 200
    found = figures(page)
    assert row(found, named["a"].id) == [5, 4, 3, 3, 2, 2, 1, 2]
    assert row(found, named["b"].id) == [4, 4, 3, 2, 2, 0, 0, 0]
    assert row(found, "total") == [9, 8, 6, 5, 4, 2, 1, 2]
    assert "Annuaire" in page and "Salon" in page
    assert "75 %" in page  # Salon: 3 reached out of 4 contacted
    # The extra figures: Salon has 2 calls and 2 messages for 2 confirmed, 100 % no-show.
    assert "Autres indicateurs" in page and "Taux d'absence (%)" in page
    for tab in ("Par source", "Par appelant·e", "Par open lab"):
        assert tab in page
    assert 'role="img"' in page and 'data-chart="funnel"' in page
    assert "/chartjs/chart.umd.js" in page and "dashboard.js" in page
    assert "<script>" not in page  # no inline script (a Content-Security-Policy is coming)


def test_per_caller_and_per_lab_tabs(named, manager_client):
    found = figures(_text(manager_client.get(URL + "?by=caller")))
    totals = row(found, "total")
    assert totals == [5, 5, 4, 4, 3, 1, 1, 1]
    by_lab = figures(_text(manager_client.get(URL + "?by=lab")))
    assert row(by_lab, named["lab2"].id) == [1, 1, 1, 1, 1, 1, 0, 1]
    assert by_lab[(str(named["lab1"].id), "invited")][0] == 8


def test_each_figure_links_to_its_people(named, manager_client):
    found = figures(_text(manager_client.get(URL)))
    count, url = found[(str(named["a"].id), "confirmed")]
    page = _text(manager_client.get(url))
    assert count == 2
    assert "Confirmés — Annuaire" in page
    assert "2 inscriptions" in page
    assert page.count(f"/prospects/{named['p3'].prospect_id}") == 2  # p3, in lab 1 and lab 2
    assert "Lab 2" in page
    count, url = found[(str(named["b"].id), "reached")]
    page = _text(manager_client.get(url))
    assert count == 3
    assert all(f"P {name}" in page for name in ("P5", "P6", "P7"))
    assert "P P4" not in page
    everyone = _text(manager_client.get(found[("total", "invited")][1]))
    assert "9 inscriptions" in everyone


def test_the_people_list_is_paginated(named, manager_client, monkeypatch):
    monkeypatch.setattr("crm.services.funnel_export.PEOPLE_PER_PAGE", 4)
    first = manager_client.get(URL + "personnes?by=source&key=total&step=invited")
    text = _text(first)
    assert "Page 1 sur 3" in text and "Page suivante" in text
    last = manager_client.get(URL + "personnes?by=source&key=total&step=invited&page=3")
    assert last.status_code == 200 and "Page 3 sur 3" in _text(last)


def test_the_tables_export_as_csv(named, manager_client):
    rows = read_csv(manager_client.get(URL + "export/entonnoir.csv?by=source"))
    assert rows[0][:4] == ["Source", "Invités", "Contactés", "Contactés : % de l'étape précédente"]
    total = rows[-1]
    assert total[0] == "Total" and total[1] == "9" and total[2] == "8"
    figures_rows = read_csv(manager_client.get(URL + "export/indicateurs.csv?by=source"))
    salon = next(r for r in figures_rows if r[0] == "Salon")
    assert salon[1:] == ["1", "1", "3", "100", "25"]
    conversion = read_csv(manager_client.get(URL + "export/conversion.csv?by=caller"))
    assert conversion[0][0] == "Appelant·e"
    assert {r[0] for r in conversion[1:]} == {"alice@test.fr", "bob@test.fr"}
    people = read_csv(
        manager_client.get(URL + "personnes?by=source&key=total&step=present&format=csv")
    )
    assert people[0] == ["prénom", "nom", "open lab", "date de l'open lab", "source", "statut"]
    assert sorted(r[2] for r in people[1:]) == ["Lab", "Lab 2"]
    assert all(r[5] == "Présent" for r in people[1:])
    exported = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "list.exported")
    ).all()
    assert [(e.object_type, e.detail["etape"], e.detail["lignes"]) for e in exported] == [
        ("dashboard", "present", 2)
    ]


def test_csv_cells_never_run_a_formula(named, manager_client):
    named["b"].name = "=HYPERLINK(1)"
    db.session.commit()
    rows = read_csv(manager_client.get(URL + "export/entonnoir.csv"))
    assert "'=HYPERLINK(1)" in [r[0] for r in rows]


def test_a_chosen_lab_shows_its_forecast_charts_and_who_to_call(named, manager_client):
    lab2 = named["lab2"]
    world = {"source": named["b"], "lab": lab2}
    fresh = person(world, last_name="NOUVEAU")
    page = _text(manager_client.get(URL + f"?lab={lab2.id}"))
    assert "Prévision — Lab 2" in page
    assert "participant attendu pour un objectif de 30" in page
    assert "Il manque" in page and "confirmations" in page
    assert f"/appels/inscriptions/{fresh.id}" in page and f"/prospects/{fresh.prospect_id}" in page
    charts = charts_of(page)
    assert charts["funnel"]["datasets"][0]["data"] == [2, 1, 1, 1, 1, 1, 0, 1]
    confirmations = charts["confirmations"]
    assert confirmations["datasets"][1]["data"][-1] == 30
    # Today's count, then the target drawn up to the lab's day (in 10 days).
    assert confirmations["datasets"][0]["data"] == [1] + [None] * 10
    assert len(confirmations["labels"]) == 11
    assert 'data-chart="confirmations"' in page
    assert "Données du graphique : confirmés chaque jour" in page
    forecast = read_csv(manager_client.get(URL + f"export/previsions.csv?lab={lab2.id}"))
    assert forecast[1][0] == "Annuaire" and forecast[1][1] == "1"
    to_call = read_csv(manager_client.get(URL + f"export/a-appeler.csv?lab={lab2.id}"))
    assert [r[1] for r in to_call[1:]] == ["NOUVEAU"]
    series = read_csv(manager_client.get(URL + f"export/confirmations.csv?lab={lab2.id}"))
    assert series[0] == ["Jour", "Confirmés", "Objectif"] and series[-1][1:] == ["1", "30"]


def test_the_period_filters_the_registrations(named, manager_client):
    found = figures(_text(manager_client.get(URL + "?du=01/01/2001&au=2001-12-31")))
    assert found == {}
    page = _text(manager_client.get(URL + "?du=01/01/2001&au=2001-12-31"))
    assert "Aucune inscription ne correspond à ces filtres." in page


@pytest.mark.parametrize(
    "query,message",
    [
        ("du=32/13/2025", "Saisissez une date au format jj/mm/aaaa"),
        ("du=demain", "Saisissez une date au format jj/mm/aaaa"),
        ("au=0001-01-01", "Saisissez une date entre 2000 et 2100."),
        ("du=2025-03-10&au=09/03/2025", "La date de fin doit être le jour de début ou après."),
        ("lab=999999", "Cet open lab n'existe pas"),
        ("lab=abc", "Cet open lab n'existe pas"),
        ("lab=99999999999999999999999", "Cet open lab n'existe pas"),
        ("by=pays", "Choisissez une vue"),
    ],
)
def test_bad_filters_get_a_french_message_never_a_500(named, manager_client, query, message):
    for url in (URL, URL + "personnes?step=invited&", URL + "export/entonnoir.csv"):
        response = manager_client.get(f"{url}{'&' if '?' in url else '?'}{query}")
        assert response.status_code == 400, (url, query)
        assert message in _text(response), url


@pytest.mark.parametrize(
    "query,message",
    [
        ("by=source&key=total&step=partis", "Cette étape de l'entonnoir n'existe pas."),
        ("by=source&key=abc&step=invited", "Cette ligne du tableau n'existe pas."),
        # isdigit() is True for "²" but int() refuses it: Python's English error was shown.
        ("by=source&key=%C2%B2&step=invited", "Cette ligne du tableau n'existe pas."),
        ("by=source&step=", "Cette étape de l'entonnoir n'existe pas."),
    ],
)
def test_bad_people_links_get_a_french_message(named, manager_client, query, message):
    response = manager_client.get(URL + "personnes?" + query)
    assert response.status_code == 400
    assert message in _text(response)


def test_odd_page_numbers_do_not_break_the_people_list(named, manager_client):
    for page in ("0", "-3", "99999999999999999999", "abc"):
        url = URL + f"personnes?by=source&key=total&step=invited&page={page}"
        assert manager_client.get(url).status_code in (200, 404), page
    assert manager_client.get(URL + "export/inconnu.csv").status_code == 404


def test_a_lab_table_needs_a_lab(named, manager_client):
    assert manager_client.get(URL + "export/previsions.csv").status_code == 404


# --- Who sees what --------------------------------------------------------------------


@pytest.fixture
def alice_client(named, client):
    assert login(client, "alice@test.fr", "x" * 12).status_code == 302
    return client


def test_a_caller_sees_only_their_own_figures_per_lab(named, alice_client):
    response = alice_client.get(URL)
    page = _text(response)
    assert response.status_code == 200
    assert "Vos chiffres" in page
    found = figures(page)
    lab1 = named["lab1"].id
    assert row(found, lab1) == [3, 3, 2, 2, 1, 1, 1, 1]  # p1, p2, p3: the people alice called
    assert {key for key, _ in found} == {str(lab1), "total"}
    assert "bob@test.fr" not in page and "Salon" not in page
    assert "Par source" not in page and "Par appelant·e" not in page
    assert "Prévision" not in page
    # Asking for another dimension changes nothing: still their own calls, per lab.
    other = figures(_text(alice_client.get(URL + "?by=source")))
    assert other == found
    # Their own people lists work, and only list people they called.
    people = _text(alice_client.get(found[(str(lab1), "invited")][1]))
    assert all(f"P {n}" in people for n in ("P1", "P2", "P3")) and "P P6" not in people


def test_a_caller_cannot_open_someone_elses_figures(named, alice_client):
    ids = {u.email: u.id for u in db.session.query(User)}
    own = alice_client.get(URL + f"personnes?by=caller&key={ids['alice@test.fr']}&step=invited")
    assert own.status_code == 200 and "P P6" not in _text(own)
    other = alice_client.get(URL + f"personnes?by=caller&key={ids['bob@test.fr']}&step=invited")
    assert other.status_code == 403
    source = alice_client.get(URL + f"personnes?by=source&key={named['b'].id}&step=invited")
    assert source.status_code == 403
    lab = named["lab2"].id
    for table in ("previsions", "a-appeler", "confirmations"):
        assert alice_client.get(URL + f"export/{table}.csv?lab={lab}").status_code == 403
    # The funnel exports are theirs only.
    rows = read_csv(alice_client.get(URL + "export/entonnoir.csv?by=caller"))
    assert rows[0][0] == "Open lab" and rows[-1][1] == "3"
    assert all("bob" not in cell for r in rows for cell in r)


def test_the_dashboard_is_in_the_navigation(named, manager_client):
    home = _text(manager_client.get("/"))
    assert 'href="/tableau-de-bord/"' in home and "Tableau de bord" in home


def test_chartjs_is_served_from_node_modules(named, manager_client):
    response = manager_client.get("/chartjs/chart.umd.js")
    assert response.status_code == 200
    assert b"Chart" in response.data[:5000]
    response.close()


def test_the_other_figures_link_to_their_people_too(named, manager_client):
    page = _text(manager_client.get(URL))
    b = named["b"].id
    for step, present, absent in (("no_show", "P7", "P6"), ("opted_out", "P4", "P5")):
        link = f"personnes?step={step}&by=source&key={b}"
        assert link in page
        people = _text(manager_client.get(URL + link))
        assert f"P {present}" in people and f"P {absent}" not in people
