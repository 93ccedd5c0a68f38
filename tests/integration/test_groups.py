"""Workshop groups: the service on the real database, then the managers' pages."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.models import Event, Lab, Registration
from crm.services import workshop_groups
from crm.services.exports import BOM
from crm.services.registrations import transition
from crm.services.workshop_groups import GroupError
from tests.conftest import csrf_token
from tests.factories import person


def confirmed(world, n: int, organisation: str = "", profile: str = "", **fields):
    return [
        person(
            world,
            "confirmed",
            organisation=organisation,
            profile=profile,
            last_name=fields.get("last_name", f"Nom{i:02d}"),
        )
        for i in range(n)
    ]


def check_in(registrations) -> None:
    for registration in registrations:
        transition(registration, "attended", None)
    db.session.commit()


def group_of(registrations) -> list[int | None]:
    db.session.expire_all()
    return [db.session.get(Registration, r.id).group_no for r in registrations]


def sizes(lab: Lab) -> list[int]:
    return [group.size for group in workshop_groups.groups_for(lab).groups]


def events(kind: str) -> list[Event]:
    return list(db.session.scalars(sa.select(Event).where(Event.kind == kind).order_by(Event.id)))


def flashes(html: str) -> str:
    return html.replace("&#39;", "'").replace("&#34;", '"')


# --- the service ----------------------------------------------------------------------------


def test_before_the_lab_the_confirmed_people_are_grouped(world):
    lab = world["lab"]
    people = confirmed(world, 12)
    others = [person(world, "interested"), person(world, "declined")]
    assert workshop_groups.basis(lab) == "confirmed"
    assert workshop_groups.make_groups(lab, world["manager"]) is None
    db.session.commit()
    assert sizes(lab) == [6, 6]  # 12 people, target 8: two groups of 6
    assert sorted(group_of(people)) == [1] * 6 + [2] * 6
    assert group_of(others) == [None, None]
    (made,) = events("groups.made")
    assert made.data == {"basis": "confirmed", "target_size": 8, "sizes": [6, 6]}
    assert (made.lab_id, made.actor_id) == (lab.id, world["manager"].id)


def test_on_the_day_the_present_people_are_grouped_and_the_others_cleared(world):
    lab = world["lab"]
    people = confirmed(world, 14)
    workshop_groups.make_groups(lab, None)
    db.session.commit()
    check_in(people[:11])
    assert workshop_groups.basis(lab) == "attended"
    with pytest.raises(GroupError, match="Des groupes existent déjà"):
        workshop_groups.make_groups(lab, None)
    workshop_groups.make_groups(lab, None, replace=True)
    db.session.commit()
    assert sizes(lab) == [6, 5]
    assert None not in group_of(people[:11])
    assert group_of(people[11:]) == [None] * 3
    page = workshop_groups.groups_for(lab)
    assert (page.basis, page.participants, page.ungrouped) == ("attended", 11, [])


def test_colleagues_and_profiles_are_spread(world):
    lab = world["lab"]
    town_hall = confirmed(world, 3, organisation="Mairie de Lyon", profile="Agent")
    same_hall = confirmed(world, 1, organisation=" MAIRIE DE LYÔN ", profile="agent")
    others = confirmed(world, 12, profile="Usager")
    lab.group_size = 5
    workshop_groups.make_groups(lab, None)
    db.session.commit()
    assert sizes(lab) == [6, 5, 5]
    hall_groups = group_of(town_hall + same_hall)
    assert sorted(set(hall_groups)) == [1, 2, 3]  # 4 colleagues in 3 groups: 2, 1, 1
    assert len(hall_groups) == 4 and None not in group_of(others)


def test_fewer_than_5_people_give_one_group_and_a_warning(world):
    lab = world["lab"]
    people = confirmed(world, 3)
    warning = workshop_groups.make_groups(lab, None)
    db.session.commit()
    assert warning == "Moins de 5 participants : un seul groupe."
    assert group_of(people) == [1, 1, 1]
    assert events("groups.made")[0].reason == warning


def test_a_person_is_moved_by_hand_to_a_group_or_a_new_one(world):
    lab = world["lab"]
    people = confirmed(world, 12)
    workshop_groups.make_groups(lab, None)
    db.session.commit()
    mover = next(r for r in people if r.group_no == 1)
    workshop_groups.move(lab, mover.id, 2, world["manager"])
    db.session.commit()
    assert sizes(lab) == [5, 7]
    workshop_groups.move(lab, mover.id, 3, world["manager"])
    db.session.commit()
    assert sizes(lab) == [5, 6, 1]
    assert [e.data for e in events("groups.moved")] == [
        {"from": 1, "to": 2},
        {"from": 2, "to": 3},
    ]
    assert events("groups.moved")[0].registration_id == mover.id


@pytest.mark.parametrize("group_no", [0, -1, 4, 99])
def test_a_bad_group_number_is_refused_in_french(world, group_no):
    lab = world["lab"]
    people = confirmed(world, 12)
    workshop_groups.make_groups(lab, None)
    db.session.commit()
    with pytest.raises(GroupError, match=f"Le groupe {group_no} n'existe pas"):
        workshop_groups.move(lab, people[0].id, group_no, None)


def test_someone_outside_the_lab_or_the_participants_cannot_be_moved(world):
    lab = world["lab"]
    people = confirmed(world, 6)
    declined = person(world, "declined")
    other_lab = Lab(title="Autre", starts_at=lab.starts_at, ends_at=lab.ends_at)
    db.session.add(other_lab)
    db.session.flush()
    with pytest.raises(GroupError, match="Formez d'abord les groupes"):
        workshop_groups.move(lab, people[0].id, 1, None)
    workshop_groups.make_groups(lab, None)
    db.session.commit()
    with pytest.raises(GroupError, match="n'est pas inscrite à cet open lab"):
        workshop_groups.move(other_lab, people[0].id, 1, None)
    with pytest.raises(GroupError, match="n'est pas inscrite à cet open lab"):
        workshop_groups.move(lab, 987654, 1, None)
    with pytest.raises(GroupError, match="n'est dans aucun groupe"):
        workshop_groups.move(lab, declined.id, 1, None)


def test_a_late_check_in_can_be_placed_in_a_group(world):
    lab = world["lab"]
    people = confirmed(world, 7)
    check_in(people[:6])
    workshop_groups.make_groups(lab, None)
    db.session.commit()
    check_in(people[6:])
    page = workshop_groups.groups_for(lab)
    assert [m.registration_id for m in page.ungrouped] == [people[6].id]
    workshop_groups.move(lab, people[6].id, 1, None)
    db.session.commit()
    assert sizes(lab) == [7]
    assert workshop_groups.groups_for(lab).ungrouped == []


@pytest.mark.parametrize("size", [4, 11, 0])
def test_the_target_size_stays_within_5_and_10(world, size):
    with pytest.raises(GroupError, match="entre 5 et 10 personnes"):
        workshop_groups.set_group_size(world["lab"], size, None)


def test_the_target_size_shapes_the_next_split(world):
    lab = world["lab"]
    confirmed(world, 20)
    workshop_groups.set_group_size(lab, 10, world["manager"])
    workshop_groups.make_groups(lab, None)
    db.session.commit()
    assert sizes(lab) == [10, 10]
    assert events("groups.size_changed")[0].data == {"from": 8, "to": 10}


# --- the pages ------------------------------------------------------------------------------


def url(lab: Lab, path: str = "") -> str:
    return f"/labs/{lab.id}/groupes/{path}"


def post(client, lab: Lab, path: str, **data):
    data["csrf_token"] = csrf_token(client, url(lab))
    return client.post(url(lab, path), data=data, follow_redirects=True)


def test_callers_cannot_see_or_change_the_groups(world, caller_client):
    lab = world["lab"]
    token = csrf_token(caller_client, "/")
    assert caller_client.get(url(lab)).status_code == 403
    assert caller_client.get(url(lab, "export.csv")).status_code == 403
    for path in ("former", "deplacer", "taille"):
        assert caller_client.post(url(lab, path), data={"csrf_token": token}).status_code == 403


def test_an_unknown_lab_is_404(world, manager_client):
    assert manager_client.get("/labs/987654/groupes/").status_code == 404


def test_the_manager_forms_groups_from_the_confirmed_then_from_the_present(world, manager_client):
    lab = world["lab"]
    people = confirmed(world, 12)
    html = manager_client.get(url(lab)).get_data(as_text=True)
    assert "Groupes d'atelier" in html
    assert "12 personnes confirmées" in html
    assert "Aucun groupe pour l'instant." in html
    html = post(manager_client, lab, "former").get_data(as_text=True)
    assert "Groupes formés." in html
    assert "<caption>Groupe 1 : 6 personnes</caption>" in html
    assert "<caption>Groupe 2 : 6 personnes</caption>" in html
    assert "Former à nouveau les groupes" in html

    check_in(people[:5])
    html = flashes(post(manager_client, lab, "former").get_data(as_text=True))
    assert "cochez la case de confirmation" in html
    assert sorted(group_of(people)) == [1] * 6 + [2] * 6  # nothing changed
    html = flashes(post(manager_client, lab, "former", replace="y").get_data(as_text=True))
    assert "5 personnes présentes" in html
    assert "<caption>Groupe 1 : 5 personnes</caption>" in html
    assert group_of(people) == [1] * 5 + [None] * 7


def test_fewer_than_5_participants_give_one_group_and_the_warning(world, manager_client):
    lab = world["lab"]
    people = confirmed(world, 4)
    html = flashes(post(manager_client, lab, "former").get_data(as_text=True))
    assert "Moins de 5 participants : un seul groupe." in html
    assert "fr-alert--warning" in html
    assert group_of(people) == [1] * 4
    assert "Hors de la fourchette : 4 personnes" in html


def test_the_manager_moves_a_person_by_hand(world, manager_client):
    lab = world["lab"]
    people = confirmed(world, 12)
    post(manager_client, lab, "former")
    mover = next(r for r in people if group_of([r]) == [1])
    html = flashes(
        post(manager_client, lab, "deplacer", registration_id=mover.id, group_no=3).get_data(
            as_text=True
        )
    )
    assert "est dans le groupe 3." in html
    assert group_of([mover]) == [3]
    assert "<caption>Groupe 3 : 1 personne</caption>" in html


@pytest.mark.parametrize("group_no", ["7", "0", "deux", ""])
def test_a_bad_group_number_gives_a_french_message_and_changes_nothing(
    world, manager_client, group_no
):
    lab = world["lab"]
    people = confirmed(world, 12)
    post(manager_client, lab, "former")
    before = group_of(people)
    response = post(
        manager_client, lab, "deplacer", registration_id=people[0].id, group_no=group_no
    )
    html = flashes(response.get_data(as_text=True))
    assert response.status_code == 200
    assert re.search(
        r"Le groupe -?\d+ n'existe pas : choisissez le groupe 1, 2, ou 3 pour un nouveau groupe"
        r"|Choisissez un numéro de groupe|Choisissez un groupe",
        html,
    )
    assert "fr-alert--error" in html
    assert group_of(people) == before
    assert events("groups.moved") == []


def test_the_size_form_is_validated_in_french(world, manager_client):
    lab = world["lab"]
    for bad in ("4", "11", "huit", ""):
        response = post(manager_client, lab, "taille", group_size=bad)
        html = response.get_data(as_text=True)
        assert response.status_code == 400, bad
        assert "La taille cible doit être comprise entre 5 et 10 personnes." in html
        assert 'aria-describedby="group_size-erreur"' in html
    db.session.expire_all()
    assert db.session.get(Lab, lab.id).group_size == 8
    html = post(manager_client, lab, "taille", group_size="6").get_data(as_text=True)
    assert "Taille cible : 6 personnes." in html
    db.session.expire_all()
    assert db.session.get(Lab, lab.id).group_size == 6


FORMULA = '=HYPERLINK("http://evil.example")'


def test_the_csv_export_is_for_french_excel_and_runs_no_formula(world, manager_client):
    lab = world["lab"]
    people = confirmed(world, 5, organisation=FORMULA)
    people[0].prospect.first_name = "Élodie"
    people[0].prospect.profile = "Agent d'accueil"
    db.session.commit()
    post(manager_client, lab, "former")
    response = manager_client.get(url(lab, "export.csv"))
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "groupes.csv" in response.headers["Content-Disposition"]
    text = response.get_data().decode("utf-8")
    assert text.startswith(BOM)
    rows = list(csv.reader(io.StringIO(text[len(BOM) :]), delimiter=";"))
    assert rows[0] == ["groupe", "prénom", "nom", "structure", "profil"]
    assert len(rows) == 6
    assert all(row[0] == "1" for row in rows[1:])
    assert all(row[3] == "'" + FORMULA for row in rows[1:])  # neutralised
    assert ["1", "Élodie", "Nom00", "'" + FORMULA, "Agent d'accueil"] in rows
    assert len(events("groups.exported")) == 1


def test_the_page_prints_one_group_per_page_without_navigation(world, manager_client):
    lab = world["lab"]
    confirmed(world, 12)
    html = post(manager_client, lab, "former").get_data(as_text=True)
    # The print rules live in static/groups.css (the CSP allows no inline <style>).
    assert '<link rel="stylesheet" href="/static/groups.css">' in html
    css = manager_client.get("/static/groups.css")
    printed = css.get_data(as_text=True).split("@media print {")[1]
    css.close()
    assert ".crm-group + .crm-group { break-before: page;" in printed
    assert ".fr-header" in printed and "display: none !important" in printed
    assert html.count('class="crm-group') == 2
