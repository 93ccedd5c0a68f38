"""The caller workspace through HTTP: next call, one-click outcome, landing on the next person."""

from __future__ import annotations

import html
import re

import sqlalchemy as sa

from crm.extensions import db
from crm.models import Call, Registration
from tests.conftest import csrf_token, login
from tests.factories import person


def _token(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def _caller_client(app, world, email="alice@test.fr"):
    client = app.test_client()
    assert login(client, email, "x" * 12).status_code == 302
    return client


def test_next_call_then_interested_lands_on_the_next_person(app, world):
    first = person(world, age_minutes=100, first_name="Première")
    second = person(world, age_minutes=50, first_name="Seconde")
    lab_id = world["lab"].id
    client = _caller_client(app, world)

    workspace = client.get("/appels/").get_data(as_text=True)
    assert "Prochain appel" in workspace and "Ma journée" in workspace
    response = client.post(f"/appels/labs/{lab_id}/suivant", data={"csrf_token": _token(workspace)})
    assert response.headers["Location"].endswith(f"/appels/inscriptions/{first.id}")

    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Première" in page and "petits groupes" in page and "Lab" in page
    versions = {
        name: re.search(rf'name="{name}" type="hidden" value="(\d+)"', page).group(1)
        for name in ("prospect_version", "registration_version")
    }
    response = client.post(
        f"/appels/inscriptions/{first.id}",
        data={
            "csrf_token": _token(page),
            "outcome": "interested",
            "notes": "Très motivée",
            **versions,
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/appels/inscriptions/{second.id}")
    with app.app_context():
        assert db.session.get(Registration, first.id).status == "interested"
        call = db.session.scalar(sa.select(Call))
        assert (call.outcome, call.notes) == ("interested", "Très motivée")
    summary = client.get("/appels/").get_data(as_text=True)
    assert re.search(r'crm-count fr-mb-1v">1<', summary)


def test_an_outcome_without_a_choice_or_with_a_bad_callback_changes_nothing(app, world):
    reg = person(world)
    client = _caller_client(app, world)
    page = client.get(f"/appels/inscriptions/{reg.id}").get_data(as_text=True)
    empty = client.post(
        f"/appels/inscriptions/{reg.id}", data={"csrf_token": _token(page), "outcome": ""}
    )
    assert empty.status_code == 400
    assert "Choisissez le résultat de l'appel." in html.unescape(empty.get_data(as_text=True))
    past = client.post(
        f"/appels/inscriptions/{reg.id}",
        data={
            "csrf_token": _token(page),
            "outcome": "callback",
            "callback_date": "2020-01-07",
            "callback_time": "10:00",
        },
    )
    assert past.status_code == 409
    assert "La date de rappel est passée" in past.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Call)) == 0


def test_a_colleagues_lease_is_shown_and_logging_is_refused(app, world):
    reg = person(world)
    alice = _caller_client(app, world)
    page = alice.get("/appels/").get_data(as_text=True)
    alice.post(f"/appels/labs/{world['lab'].id}/suivant", data={"csrf_token": _token(page)})
    bob = _caller_client(app, world, "bob@test.fr")
    bob_page = bob.get(f"/appels/inscriptions/{reg.id}").get_data(as_text=True)
    assert "Un·e collègue est en train d'appeler cette personne" in bob_page
    refused = bob.post(
        f"/appels/inscriptions/{reg.id}",
        data={"csrf_token": _token(bob_page), "outcome": "confirmed"},
    )
    assert refused.status_code == 409
    with app.app_context():
        assert db.session.get(Registration, reg.id).status == "to_contact"


def test_nobody_left_to_call_says_so(app, world):
    client = _caller_client(app, world)
    page = client.get("/appels/").get_data(as_text=True)
    response = client.post(
        f"/appels/labs/{world['lab'].id}/suivant",
        data={"csrf_token": _token(page)},
        follow_redirects=True,
    )
    assert "Plus personne à appeler" in response.get_data(as_text=True)


def test_the_prospect_page_shows_the_pitch_the_call_link_and_the_calls(app, world):
    reg = person(world, first_name="Zoé")
    with app.app_context():
        from crm.models import User
        from crm.services import call_queue, calls

        alice = db.session.get(User, world["alice"].id)
        served = call_queue.next_call(world["lab"].id, alice)
        calls.log_outcome(served.registration, alice, calls.Outcome("interested", notes="OK"))
    client = _caller_client(app, world)
    page = html.unescape(client.get(f"/prospects/{reg.prospect_id}").get_data(as_text=True))
    assert "Ce qu'on propose" in page and "petits groupes" in page
    assert f"/appels/inscriptions/{reg.id}" in page
    assert "Appel : Intéressé·e" in page and "Relances : démarrer les relances" in page


def test_next_call_is_refused_for_a_lab_that_is_not_recruiting(app, world):
    person(world)
    world["lab"].status = "closed"
    db.session.commit()
    client = _caller_client(app, world)
    response = client.post(
        f"/appels/labs/{world['lab'].id}/suivant",
        data={"csrf_token": csrf_token(client, "/appels/")},
        follow_redirects=True,
    )
    assert "n'est pas en recrutement" in html.unescape(response.get_data(as_text=True))
    with app.app_context():
        from crm.models import Prospect

        assert db.session.scalar(sa.select(Prospect.leased_by_id)) is None


def test_a_bad_callback_date_gets_a_french_message(app, world):
    reg = person(world)
    client = _caller_client(app, world)
    page = client.get(f"/appels/inscriptions/{reg.id}").get_data(as_text=True)
    response = client.post(
        f"/appels/inscriptions/{reg.id}",
        data={
            "csrf_token": _token(page),
            "outcome": "callback",
            "callback_date": "demain",
            "callback_time": "25:99",
        },
    )
    text = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 400
    assert "Date du rappel invalide" in text and "Heure du rappel invalide" in text
    # Each error also sits under its field, linked to it for screen readers.
    for field in ("callback_date", "callback_time"):
        assert f'aria-describedby="{field}-erreur"' in text
        assert f'<p id="{field}-erreur" class="fr-error-text">' in text


def test_a_callback_date_out_of_any_calendar_is_refused_in_french(app, world):
    # Year 1 and year 9999 used to overflow the time-zone conversion (a 404 page, notes lost).
    reg = person(world)
    client = _caller_client(app, world)
    page = client.get(f"/appels/inscriptions/{reg.id}").get_data(as_text=True)
    for day, status, message in (
        ("0001-01-01", 400, "La date de rappel est passée"),  # the form's overflow guard
        ("9999-12-31", 409, "Le rappel doit tomber dans l'année qui vient."),  # the service
    ):
        response = client.post(
            f"/appels/inscriptions/{reg.id}",
            data={
                "csrf_token": _token(page),
                "outcome": "callback",
                "notes": "Rappeler après les vacances",
                "callback_date": day,
                "callback_time": "10:00",
            },
        )
        text = html.unescape(response.get_data(as_text=True))
        assert response.status_code == status, day
        assert message in text
        assert "Rappeler après les vacances" in text  # what the caller typed is still there
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Call)) == 0


def test_task_and_version_ids_that_are_not_plain_digits_are_ignored(app, world):
    # "²".isdigit() is True but int("²") raises: these used to be 500s.
    reg = person(world)
    client = _caller_client(app, world)
    page = client.get(f"/appels/inscriptions/{reg.id}?tache=²")
    assert page.status_code == 200
    response = client.post(
        f"/appels/inscriptions/{reg.id}",
        data={
            "csrf_token": _token(page.get_data(as_text=True)),
            "outcome": "no_answer",
            "task_id": "²",
            "prospect_version": "²",
            "registration_version": "١",  # an Arabic-Indic digit
        },
    )
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalar(sa.select(Call.outcome)) == "no_answer"
