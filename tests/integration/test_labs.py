"""Lab pages: list, create, edit, show, with French validation and the managers-only rule."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.models import Event, Lab, Prospect, Source
from crm.services.labs import LabError, LabInput, check_lab, create_lab, status_counts
from crm.services.registrations import register, transition
from tests.conftest import csrf_token


def lab_form(**overrides: str) -> dict[str, str]:
    values = {
        "title": "Prendre rendez-vous en préfecture",
        "problem": "Les usagers n'obtiennent pas de rendez-vous.",
        "venue": "11 rue des Saussaies, 75008 Paris",
        "day": "2026-03-03",
        "start": "09:00",
        "end": "13:00",
        "capacity": "40",
        "target": "30",
        "status": "recruiting",
        "next_lab_id": "",
        "overbooking": "0",
        "offer_hours": "24",
    }
    values.update(overrides)
    return values


def make_lab(app, title: str = "Lab", day: date = date(2026, 3, 3), **values) -> int:  # type: ignore[no-untyped-def]
    with app.app_context():
        lab, _ = create_lab(
            LabInput(title=title, day=day, start=time(9), end=time(13), **values), None
        )
        db.session.commit()
        return lab.id


def post(client, url: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post(url, data={**data, "csrf_token": csrf_token(client, "/labs/")})


def test_a_date_typed_the_french_way_is_read(app, manager_client):
    """Without a date picker, people type 03/03/2026, as the field's hint says."""
    response = post(manager_client, "/labs/nouveau", lab_form(day="03/03/2026"))
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalar(sa.select(Lab.starts_at)) == datetime(2026, 3, 3, 8, tzinfo=UTC)


def test_nul_characters_are_dropped_from_what_is_typed(app, manager_client):
    """No one types NUL, and PostgreSQL text cannot hold it: dropped before the view."""
    response = post(manager_client, "/labs/nouveau", lab_form(title="Lab\x00 test", venue="\x00"))
    assert response.status_code == 302
    with app.app_context():
        lab = db.session.scalar(sa.select(Lab))
        assert (lab.title, lab.venue) == ("Lab test", "")


def test_manager_creates_a_lab_in_paris_time(app, manager_client):
    response = post(manager_client, "/labs/nouveau", lab_form())
    assert response.status_code == 302
    with app.app_context():
        lab = db.session.scalar(sa.select(Lab))
        assert lab.title == "Prendre rendez-vous en préfecture"
        # 3 March: Paris is UTC+1, so 09:00 local is 08:00 UTC.
        assert lab.starts_at == datetime(2026, 3, 3, 8, tzinfo=UTC)
        assert lab.ends_at == datetime(2026, 3, 3, 12, tzinfo=UTC)
        assert (lab.capacity, lab.target, lab.status) == (40, 30, "recruiting")
        assert db.session.scalar(sa.select(Event.kind).where(Event.lab_id == lab.id)) == (
            "lab.created"
        )
    page = manager_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "mardi 3 mars 2026, de 09:00 à 13:00" in page
    assert "Recrutement en cours" in page


def test_summer_time_is_utc_plus_two(app, manager_client):
    post(manager_client, "/labs/nouveau", lab_form(day="2026-06-10", start="14:00", end="18:00"))
    with app.app_context():
        lab = db.session.scalar(sa.select(Lab))
        assert lab.starts_at == datetime(2026, 6, 10, 12, tzinfo=UTC)


def test_the_target_defaults_to_30(manager_client):
    html = manager_client.get("/labs/nouveau").get_data(as_text=True)
    assert re.search(r'<input[^>]*name="target"[^>]*value="30"', html)


@pytest.mark.parametrize(
    "overrides,field,message",
    [
        ({"end": "08:00"}, "end", "L'heure de fin doit être après l'heure de début"),
        ({"end": "09:00"}, "end", "L'heure de fin doit être après l'heure de début"),
        ({"capacity": "0"}, "capacity", "La capacité doit être comprise entre 1 et 10 000"),
        ({"target": "0"}, "target", "L'objectif doit être compris entre 1 et 10 000"),
        # Past a 32-bit column: refused by the form, never a database error at the commit.
        ({"capacity": "3000000000"}, "capacity", "La capacité doit être comprise entre 1"),
        ({"target": "10001"}, "target", "L'objectif doit être compris entre 1 et 10 000"),
        ({"capacity": "beaucoup"}, "capacity", "Saisissez un nombre entier de places."),
        ({"title": "  "}, "title", "Saisissez le titre de l'open lab."),
        ({"title": ""}, "title", "Saisissez le titre de l'open lab."),
        ({"day": ""}, "day", "Saisissez la date de l'open lab."),
        ({"day": "31/02/2026"}, "day", "Saisissez une date valide"),
        # Year 1 at 00:05 in Paris is before year 1 in UTC: refused, never a failed write.
        ({"day": "0001-01-01", "start": "00:05"}, "day", "Saisissez une date entre 2000 et 2100"),
        ({"day": "9999-12-31"}, "day", "Saisissez une date entre 2000 et 2100"),
        ({"start": "9h"}, "start", "Saisissez une heure valide"),
        ({"status": "open"}, "status", "Choisissez un statut dans la liste."),
    ],
)
def test_invalid_labs_get_a_french_message_next_to_the_field(
    app, manager_client, overrides, field, message
):
    response = post(manager_client, "/labs/nouveau", lab_form(**overrides))
    html = response.get_data(as_text=True).replace("&#39;", "'")
    assert response.status_code == 400
    assert message in html
    assert f'aria-describedby="{field}-erreur"' in html
    assert f'id="{field}-erreur" class="fr-error-text"' in html
    # The summary above the form takes the focus and links to the field.
    summary = html.split('id="erreurs-formulaire"', 1)[1].split("</div>", 1)[0]
    assert f'<a href="#{field}">' in summary and message in summary
    # The title, read first by a screen reader, says the page holds errors (RGAA 8.6).
    assert "<title>Erreur : Créer un open lab — Open Lab CRM</title>" in html
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Lab)) == 0


def test_a_form_without_errors_keeps_its_plain_title(manager_client):
    html = manager_client.get("/labs/nouveau").get_data(as_text=True)
    assert "<title>Créer un open lab — Open Lab CRM</title>" in html


def test_the_service_refuses_the_same_rules_without_http(app_ctx):
    base = LabInput(title="Lab", day=date(2026, 3, 3), start=time(9), end=time(13))
    for bad, field in (
        ({"end": time(8)}, "end"),
        ({"capacity": 0}, "capacity"),
        ({"target": 0}, "target"),
        ({"capacity": 3_000_000_000}, "capacity"),
        ({"target": 10_001}, "target"),
        ({"title": " "}, "title"),
        ({"status": "open"}, "status"),
        ({"next_lab_id": 999}, "next_lab_id"),
    ):
        with pytest.raises(LabError) as info:
            check_lab(LabInput(**{**base.__dict__, **bad}))
        assert info.value.field == field
    with pytest.raises(LabError, match="lui-même"):
        check_lab(LabInput(**{**base.__dict__, "next_lab_id": 7}), lab_id=7)


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("url", ["/labs/nouveau", "/labs/{id}/modifier"])
def test_callers_cannot_create_or_edit_labs(app, caller_client, method, url):
    lab_id = make_lab(app)
    url = url.format(id=lab_id)
    if method == "get":
        response = caller_client.get(url)
    else:
        response = post(caller_client, url, lab_form(title="Piraté"))
    assert response.status_code == 403
    with app.app_context():
        assert db.session.get(Lab, lab_id).title == "Lab"


def test_callers_see_the_list_and_the_lab_page_without_manager_actions(app, caller_client):
    lab_id = make_lab(app, "Lab des agents d'accueil")
    listing = caller_client.get("/labs/").get_data(as_text=True)
    assert "Lab des agents d&#39;accueil" in listing
    assert "Créer un open lab" not in listing
    page = caller_client.get(f"/labs/{lab_id}").get_data(as_text=True)
    assert "Modifier l&#39;open lab" not in page
    assert "export.csv" not in page


def test_edit_keeps_paris_times_and_journals_the_change(app, manager_client):
    lab_id = make_lab(app, "Avant")
    form = manager_client.get(f"/labs/{lab_id}/modifier").get_data(as_text=True)
    assert 'value="2026-03-03"' in form and 'value="09:00"' in form and 'value="13:00"' in form
    response = post(
        manager_client,
        f"/labs/{lab_id}/modifier",
        lab_form(title="Après", end="17:30", status="closed"),
    )
    assert response.status_code == 302
    with app.app_context():
        lab = db.session.get(Lab, lab_id)
        assert (lab.title, lab.status) == ("Après", "closed")
        assert lab.ends_at == datetime(2026, 3, 3, 16, 30, tzinfo=UTC)
        event = db.session.scalar(sa.select(Event).where(Event.kind == "lab.updated"))
        assert set(event.data["changed"]) >= {"title", "ends_at", "status"}


def test_a_lab_cannot_be_its_own_next_lab(app, manager_client):
    lab_id = make_lab(app)
    form = manager_client.get(f"/labs/{lab_id}/modifier").get_data(as_text=True)
    assert f'<option value="{lab_id}"' not in form
    response = post(manager_client, f"/labs/{lab_id}/modifier", lab_form(next_lab_id=str(lab_id)))
    assert response.status_code == 400
    assert "Choisissez un open lab dans la liste." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Lab, lab_id).next_lab_id is None


@pytest.mark.parametrize(
    "gap_days,warned",
    [(10, True), (-30, True), (45, False), (28, False), (62, False), (90, True)],
)
def test_next_lab_outside_one_to_two_months_is_a_warning_not_a_refusal(
    app, manager_client, gap_days, warned
):
    next_id = make_lab(app, "Suite", day=date(2026, 3, 3) + timedelta(days=gap_days))
    response = post(manager_client, "/labs/nouveau", lab_form(next_lab_id=str(next_id)))
    assert response.status_code == 302
    page = manager_client.get(response.headers["Location"]).get_data(as_text=True)
    assert ("d&#39;habitude" in page or "avant celui-ci" in page) is warned
    assert "Open lab suivant" in page
    with app.app_context():
        lab = db.session.scalar(sa.select(Lab).where(Lab.title != "Suite"))
        assert lab.next_lab_id == next_id


def _registrations_in_statuses(app, lab_id: int, statuses: list[str]) -> None:  # type: ignore[no-untyped-def]
    paths = {
        "to_contact": [],
        "contacted": ["contacted"],
        "interested": ["interested"],
        "confirmed": ["confirmed"],
        "attended": ["confirmed", "attended"],
        "declined": ["declined"],
    }
    with app.app_context():
        source = Source(name="Annuaire")
        db.session.add(source)
        lab = db.session.get(Lab, lab_id)
        for i, status in enumerate(statuses):
            prospect = Prospect(
                first_name=f"Personne{i}",
                last_name="Test",
                phone=f"+3361234{i:04d}",
                source=source,
            )
            db.session.add(prospect)
            db.session.flush()
            reg, _ = register(prospect, lab, None)
            for step in paths[status]:
                transition(reg, step, None)
        db.session.commit()


def test_lab_page_shows_counts_per_status_the_gauges_and_the_people(app, manager_client):
    lab_id = make_lab(app, "Lab compté", capacity=3, target=4)
    statuses = ["to_contact"] * 3 + ["interested", "confirmed", "confirmed", "attended", "declined"]
    _registrations_in_statuses(app, lab_id, statuses)
    with app.app_context():
        counts = status_counts(lab_id)
    assert counts["to_contact"] == 3 and counts["confirmed"] == 2 and counts["attended"] == 1
    assert counts["no_show"] == 0 and sum(counts.values()) == 8

    html = manager_client.get(f"/labs/{lab_id}").get_data(as_text=True)
    assert "Inscriptions par statut" in html
    assert "À contacter" in html and "Intéressé" in html and "A décliné" in html
    assert f'href="/prospects/?lab={lab_id}&amp;statut=to_contact"' in html
    # Confirmed = confirmed + attended: 3 of a target of 4, and the venue (3 places) is full.
    assert "3 confirmés sur un objectif de 4 (75 %)" in html
    assert "Encore 1 à trouver." in html
    assert 'max="4" value="3"' in html and 'aria-labelledby="jauge-objectif"' in html
    assert "3 places occupées sur 3 (100 %)" in html and "Complet." in html
    assert html.count('href="/prospects/') >= 8
    assert "Personne0 Test" in html
    assert f"/labs/{lab_id}/export.csv?statut=confirmed" in html


def test_over_capacity_is_said_in_words(app, manager_client):
    # Confirmations stop at the capacity (waiting list); a capacity lowered afterwards can
    # leave more confirmed people than places.
    lab_id = make_lab(app, capacity=2, target=1)
    _registrations_in_statuses(app, lab_id, ["confirmed", "confirmed"])
    with app.app_context():
        db.session.get(Lab, lab_id).capacity = 1
        db.session.commit()
    html = manager_client.get(f"/labs/{lab_id}").get_data(as_text=True)
    assert "1 personne de plus que de places." in html
    assert "Objectif atteint." in html


def test_list_shows_confirmed_against_target(app, manager_client):
    lab_id = make_lab(app, "Lab listé", target=12)
    _registrations_in_statuses(app, lab_id, ["confirmed", "interested"])
    html = manager_client.get("/labs/").get_data(as_text=True)
    assert "Lab listé" in html and "1 / 12" in html


def test_unknown_lab_is_a_404(manager_client):
    assert manager_client.get("/labs/999").status_code == 404
    assert manager_client.get("/labs/999/modifier").status_code == 404
    assert manager_client.get("/labs/999/export.csv").status_code == 404
