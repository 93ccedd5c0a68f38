"""Prospect pages: search and filters, manual entry and merge, the person's page and its forms."""

from __future__ import annotations

import re
from datetime import date, time, timedelta

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.models import (
    Consent,
    Event,
    FollowUp,
    Prospect,
    Registration,
    Sequence,
    SequenceStep,
    Source,
)
from crm.services.labs import LabInput, create_lab
from crm.services.prospect_records import ProspectFilters, prospect_page
from crm.services.prospects import ProspectInput, qualify, save
from crm.services.registrations import register, transition
from crm.timeutil import utcnow
from tests.conftest import csrf_token

PEOPLE = {
    "elodie": dict(
        first_name="Élodie",
        last_name="Lefèvre",
        phone="06 12 34 56 78",
        email="Elodie.Lefevre@Exemple.fr",
        organisation="Préfecture du Rhône",
    ),
    "karim": dict(
        first_name="Karim",
        last_name="N'Diaye",
        phone="+33 7 81 22 33 44",
        email="karim@mairie-montreuil.fr",
        organisation="Mairie de Montreuil",
    ),
    "zoe": dict(first_name="Zoé", last_name="Martin", email="zoe@caf.fr", organisation="CAF"),
    "ines": dict(first_name="Inès", last_name="Durand", phone="12 34", email="ines@exemple.fr"),
}


@pytest.fixture
def world(app):  # type: ignore[no-untyped-def]
    """Two sources, two labs, four people, three registrations: ids only."""
    with app.app_context():
        annuaire, salon = Source(name="Annuaire"), Source(name="Salon")
        db.session.add_all([annuaire, salon])
        db.session.flush()
        lab_a, _ = create_lab(
            LabInput("Lab A", date(2026, 3, 3), time(9), time(13), status="recruiting"), None
        )
        lab_b, _ = create_lab(
            LabInput("Lab B", date(2026, 4, 14), time(14), time(18), status="recruiting"), None
        )
        ids: dict[str, int] = {"annuaire": annuaire.id, "salon": salon.id}
        ids |= {"lab_a": lab_a.id, "lab_b": lab_b.id}
        for key, values in PEOPLE.items():
            source = salon if key == "karim" else annuaire
            prospect, _ = save(ProspectInput(**values), source, None)
            ids[key] = prospect.id
        karim, zoe = db.session.get(Prospect, ids["karim"]), db.session.get(Prospect, ids["zoe"])
        qualify(karim, "yes", "", None)
        qualify(zoe, "no", "Ne travaille plus à l'accueil", None)
        reg, _ = register(db.session.get(Prospect, ids["elodie"]), lab_a, None)
        transition(reg, "confirmed", None)
        ids["reg_elodie_a"] = reg.id
        reg, _ = register(karim, lab_a, None)
        transition(reg, "interested", None)
        ids["reg_karim_a"] = reg.id
        register(zoe, lab_b, None)
        db.session.commit()
    return ids


def names(html: str) -> set[str]:
    """The people listed in the result table."""
    found = re.findall(r'<a href="/prospects/\d+">([^<]+)</a>', html)
    return {n.replace("&#39;", "'") for n in found}


def post(client, url: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post(url, data={**data, "csrf_token": csrf_token(client, "/prospects/")})


def flashes(client, url: str) -> str:  # type: ignore[no-untyped-def]
    return client.get(url).get_data(as_text=True).replace("&#39;", "'")


@pytest.mark.parametrize(
    "query,expected",
    [
        ("élodie", {"Élodie Lefèvre"}),
        ("ELODIE", {"Élodie Lefèvre"}),
        ("lefevre", {"Élodie Lefèvre"}),
        ("Lefèvre", {"Élodie Lefèvre"}),
        ("n'diaye", {"Karim N'Diaye"}),
        ("06 12 34 56 78", {"Élodie Lefèvre"}),
        ("06.12.34.56.78", {"Élodie Lefèvre"}),
        ("06-12-34-56-78", {"Élodie Lefèvre"}),
        ("+33 6 12 34 56 78", {"Élodie Lefèvre"}),
        ("0033612345678", {"Élodie Lefèvre"}),
        ("0612345678", {"Élodie Lefèvre"}),
        ("06 12", {"Élodie Lefèvre"}),
        ("34 56", {"Élodie Lefèvre"}),
        ("07 81 22", {"Karim N'Diaye"}),
        ("ELODIE.LEFEVRE@EXEMPLE.FR", {"Élodie Lefèvre"}),
        ("@mairie-montreuil", {"Karim N'Diaye"}),
        ("prefecture du rhone", {"Élodie Lefèvre"}),
        ("Montreuil", {"Karim N'Diaye"}),
        ("exemple.fr", {"Élodie Lefèvre", "Inès Durand"}),
        ("personne", set()),
        ("100%", set()),
    ],
)
def test_one_box_finds_names_phones_emails_and_organisations(world, caller_client, query, expected):
    response = caller_client.get("/prospects/", query_string={"q": query})
    assert response.status_code == 200
    assert names(response.get_data(as_text=True)) == expected


def test_empty_search_lists_everyone_newest_first(world, caller_client):
    html = caller_client.get("/prospects/").get_data(as_text=True)
    assert names(html) == {"Élodie Lefèvre", "Karim N'Diaye", "Zoé Martin", "Inès Durand"}
    assert "4 prospects" in html
    assert html.index("Inès Durand") < html.index("Élodie Lefèvre")


@pytest.mark.parametrize(
    "args,expected",
    [
        ({"source": "salon"}, {"Karim N'Diaye"}),
        ({"qualification": "no"}, {"Zoé Martin"}),
        ({"qualification": "unknown"}, {"Élodie Lefèvre", "Inès Durand"}),
        ({"lab": "lab_a"}, {"Élodie Lefèvre", "Karim N'Diaye"}),
        ({"lab": "lab_a", "statut": "confirmed"}, {"Élodie Lefèvre"}),
        ({"lab": "lab_b", "statut": "confirmed"}, set()),
        ({"statut": "to_contact"}, {"Zoé Martin"}),
        ({"q": "karim", "lab": "lab_a"}, {"Karim N'Diaye"}),
        ({"q": "karim", "source": "annuaire"}, set()),
        ({"source": "pas-un-nombre", "statut": "inconnu"}, None),  # ignored: everyone
    ],
)
def test_filters(world, caller_client, args, expected):
    query = {k: str(world.get(v, v)) if k in ("source", "lab") else v for k, v in args.items()}
    response = caller_client.get("/prospects/", query_string=query)
    assert response.status_code == 200
    everyone = {"Élodie Lefèvre", "Karim N'Diaye", "Zoé Martin", "Inès Durand"}
    assert names(response.get_data(as_text=True)) == (everyone if expected is None else expected)


def test_pagination_keeps_the_filters(app, world, caller_client, monkeypatch):
    monkeypatch.setitem(app.config, "PROSPECTS_PER_PAGE", 2)
    with app.app_context():
        source = db.session.get(Source, world["annuaire"])
        for i in range(3):
            save(ProspectInput(first_name=f"Extra{i}", email=f"extra{i}@exemple.fr"), source, None)
        db.session.commit()
    # Annuaire now has 6 people (Élodie, Zoé, Inès, 3 extras): 3 pages of 2.
    html = caller_client.get(f"/prospects/?source={world['annuaire']}").get_data(as_text=True)
    assert "Page 1 sur 3" in html and "6 prospects" in html
    next_link = re.search(r'href="([^"]+)">Page suivante', html).group(1).replace("&amp;", "&")
    assert f"source={world['annuaire']}" in next_link and "page=2" in next_link
    seen = names(html)
    html2 = caller_client.get(next_link).get_data(as_text=True)
    assert "Page 2 sur 3" in html2
    assert len(names(html2)) == 2 and not names(html2) & seen
    searched = caller_client.get("/prospects/?q=exemple&page=2").get_data(as_text=True)
    assert re.search(r'href="[^"]*q=exemple[^"]*">Page précédente', searched)
    assert caller_client.get("/prospects/?page=99").status_code == 200


def test_count_stops_at_the_cap_and_says_more_than(app, world):
    with app.app_context():
        page = prospect_page(ProspectFilters(), 1, 2, count_cap=3)
        assert (page.total, page.total_capped, page.pagination.pages) == (3, True, 2)
        exact = prospect_page(ProspectFilters(), 1, 2, count_cap=None)
        assert (exact.total, exact.total_capped) == (4, False)
        # A page that is not full is the last one: its total needs no count query.
        last = prospect_page(ProspectFilters(), 2, 3)
        assert (len(last.items), last.total, last.pagination.pages) == (1, 4, 2)
        beyond = prospect_page(ProspectFilters(), 5, 3)
        assert (beyond.items, beyond.total) == ([], 4)
        none = prospect_page(ProspectFilters(q="personne"), 1, 3)
        assert (none.total, none.pagination.pages) == (0, 0)


def _create_form(world, **values: str) -> dict[str, str]:
    form = {
        "first_name": "Lucie",
        "last_name": "Robert",
        "phone": "",
        "email": "",
        "organisation": "",
        "profile": "Agent d'accueil",
        "notes": "",
        "source": str(world["annuaire"]),
        "qualification": "unknown",
        "reason": "",
    }
    form.update(values)
    return form


def test_manual_entry_creates_a_prospect(app, world, caller_client):
    response = post(
        caller_client,
        "/prospects/nouveau",
        _create_form(world, phone="07.88.77.66.55", email="Lucie@Exemple.FR", qualification="yes"),
    )
    assert response.status_code == 302
    with app.app_context():
        lucie = db.session.scalar(sa.select(Prospect).where(Prospect.first_name == "Lucie"))
        assert (lucie.phone, lucie.email, lucie.qualification) == (
            "+33788776655",
            "lucie@exemple.fr",
            "yes",
        )
        assert response.headers["Location"].endswith(f"/prospects/{lucie.id}")
    page = flashes(caller_client, response.headers["Location"])
    assert "Fiche de Lucie Robert créée." in page and "07 88 77 66 55" in page


def test_manual_entry_of_a_known_person_completes_their_page(app, world, caller_client):
    response = post(
        caller_client,
        "/prospects/nouveau",
        _create_form(world, first_name="Elodie", phone="+33612345678", notes="Vue au salon"),
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/prospects/{world['elodie']}")
    page = flashes(caller_client, response.headers["Location"])
    assert "Cette personne existe déjà : fiche complétée" in page
    with app.app_context():
        elodie = db.session.get(Prospect, world["elodie"])
        assert elodie.first_name == "Élodie"  # existing values win
        assert elodie.profile == "Agent d'accueil" and elodie.notes == "Vue au salon"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Prospect)) == 4


@pytest.mark.parametrize(
    "values,message",
    [
        ({}, "Saisissez au moins un téléphone ou une adresse e-mail."),
        ({"phone": "12 34"}, "Numéro de téléphone illisible et aucune adresse e-mail."),
        ({"email": "pas-un-email"}, "Adresse e-mail invalide et aucun téléphone valide."),
        ({"email": "a@b.fr", "qualification": "no"}, "Indiquez pourquoi cette personne"),
        ({"email": "a@b.fr", "source": ""}, "Choisissez la source de ce contact."),
        ({"email": "a@b.fr", "source": "999"}, "Choisissez une source dans la liste."),
    ],
)
def test_manual_entry_errors_are_french_and_create_nothing(
    app, world, caller_client, values, message
):
    response = post(caller_client, "/prospects/nouveau", _create_form(world, **values))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True).replace("&#39;", "'")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Prospect)) == 4


def test_the_page_shows_identity_formatted_phone_and_flagged_phone(world, caller_client):
    html = caller_client.get(f"/prospects/{world['elodie']}").get_data(as_text=True)
    assert "06 12 34 56 78" in html and 'href="tel:+33612345678"' in html
    assert "elodie.lefevre@exemple.fr" in html and "Préfecture du Rhône" in html
    assert "Lab A" in html and "Confirmé" in html
    assert "Fiche créée" in html  # the timeline
    ines = caller_client.get(f"/prospects/{world['ines']}").get_data(as_text=True)
    assert "12 34" in ines and "numéro à vérifier" in ines
    assert caller_client.get("/prospects/999").status_code == 404


def test_qualification_no_requires_a_reason(app, world, caller_client):
    url = f"/prospects/{world['elodie']}/qualification"
    refused = post(caller_client, url, {"qualif-qualification": "no", "qualif-reason": " "})
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert "Indiquez pourquoi" in page
    # Mid-page, the error is announced: the title says so, and a summary right above the
    # form takes the focus and links to the field.
    assert "<title>Erreur : " in page
    summary = page.split('id="erreurs-formulaire"', 1)[1].split("</div>", 1)[0]
    assert 'href="#qualif-reason"' in summary
    with app.app_context():
        assert db.session.get(Prospect, world["elodie"]).qualification == "unknown"
    ok = post(caller_client, url, {"qualif-qualification": "no", "qualif-reason": "Pas d'usage"})
    assert ok.status_code == 302
    with app.app_context():
        elodie = db.session.get(Prospect, world["elodie"])
        assert (elodie.qualification, elodie.disqualification_reason) == ("no", "Pas d'usage")
    page = flashes(caller_client, f"/prospects/{world['elodie']}")
    assert "Qualification enregistrée : Hors cible." in page and "Pas d'usage" in page
    assert "Qualification modifiée" in page


def test_permission_change_writes_the_consent_ledger(app, world, caller_client):
    url = f"/prospects/{world['karim']}/permissions"
    form = {
        "perm-channel": "sms",
        "perm-granted": "1",
        "perm-method": "oral",
        "perm-from_person": "1",
        "perm-basis": "Accepte les SMS pendant l'appel",
    }
    assert post(caller_client, url, form).status_code == 302
    again = post(caller_client, url, form)  # no change: no second row
    assert again.status_code == 302
    page = flashes(caller_client, f"/prospects/{world['karim']}")
    assert "Aucun changement : la permission SMS était déjà accordée." in page
    assert post(caller_client, url, {**form, "perm-granted": "0"}).status_code == 302
    with app.app_context():
        rows = db.session.scalars(sa.select(Consent).order_by(Consent.id)).all()
        assert [(c.channel, c.granted, c.method, c.from_person) for c in rows] == [
            ("sms", True, "oral", True),
            ("sms", False, "oral", True),
        ]
        assert rows[0].basis == "Accepte les SMS pendant l'appel"
        assert rows[0].recorded_by.email == "caller@test.fr"
        assert db.session.get(Prospect, world["karim"]).allow_sms is False
    page = flashes(caller_client, f"/prospects/{world['karim']}")
    assert "Registre des autorisations" in page and "À l'oral, pendant un appel" in page
    assert "Test caller" in page


def test_permission_form_errors_change_nothing(app, world, caller_client):
    url = f"/prospects/{world['karim']}/permissions"
    response = post(caller_client, url, {"perm-channel": "fax", "perm-method": "oral"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Choisissez un canal dans la liste." in html
    assert "Indiquez si la permission est accordée ou retirée." in html
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Consent)) == 0


def test_legal_status_change_through_the_page(app, world, caller_client):
    reg = world["reg_karim_a"]
    page = caller_client.get(f"/prospects/{world['karim']}").get_data(as_text=True)
    select = re.search(rf'<select[^>]*name="reg-{reg}-status".*?</select>', page, re.S).group(0)
    assert 'value="confirmed"' in select and 'value="no_show"' not in select
    response = post(
        caller_client,
        f"/prospects/{world['karim']}/inscriptions/{reg}/statut",
        {
            f"reg-{reg}-current": "interested",
            f"reg-{reg}-status": "confirmed",
            f"reg-{reg}-reason": "Confirmé au téléphone",
        },
    )
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Registration, reg).status == "confirmed"
        event = db.session.scalar(
            sa.select(Event)
            .where(Event.registration_id == reg, Event.kind == "registration.status")
            .order_by(Event.id.desc())
        )
        assert (event.from_status, event.to_status, event.reason) == (
            "interested",
            "confirmed",
            "Confirmé au téléphone",
        )
        assert event.actor.email == "caller@test.fr"
        # The follow-up engine heard it: invitation stopped, reminders scheduled.
        intent = db.session.scalar(
            sa.select(Event).where(Event.registration_id == reg, Event.kind == "followup.intent")
        )
        assert intent.data == {"intents": ["stop_invitation", "start_reminders"]}
        kinds = db.session.execute(
            sa.select(Sequence.kind, FollowUp.status)
            .join(SequenceStep, SequenceStep.id == FollowUp.step_id)
            .join(Sequence, Sequence.id == SequenceStep.sequence_id)
            .where(FollowUp.registration_id == reg)
        ).all()
        assert {status for kind, status in kinds if kind == "invitation"} <= {"cancelled"}
        assert any(kind == "reminders" for kind, _ in kinds)


def test_a_status_form_with_an_error_is_announced_above_it(world, caller_client):
    reg = world["reg_elodie_a"]
    url = f"/prospects/{world['elodie']}/inscriptions/{reg}/statut"
    data = {f"reg-{reg}-current": "confirmed", f"reg-{reg}-status": "n-importe-quoi"}
    response = post(caller_client, url, data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "<title>Erreur : " in page
    summary = page.split('id="erreurs-formulaire"', 1)[1].split("</div>", 1)[0]
    assert f'href="#reg-{reg}-status"' in summary


def test_illegal_status_change_is_a_french_flash_and_changes_nothing(app, world, caller_client):
    reg = world["reg_elodie_a"]
    url = f"/prospects/{world['elodie']}/inscriptions/{reg}/statut"
    data = {f"reg-{reg}-current": "confirmed", f"reg-{reg}-status": "to_contact"}
    response = post(caller_client, url, data)
    assert response.status_code == 302
    page = flashes(caller_client, response.headers["Location"])
    assert "Impossible de passer de « Confirmé » à « À contacter »." in page
    stale = post(caller_client, url, {**data, f"reg-{reg}-current": "interested"})
    assert stale.status_code == 302
    assert "a changé entre-temps" in flashes(caller_client, stale.headers["Location"])
    with app.app_context():
        assert db.session.get(Registration, reg).status == "confirmed"
        count = sa.select(sa.func.count()).select_from(Event).where(Event.registration_id == reg)
        assert db.session.scalar(count) == 2  # created, confirmed


def test_a_registration_of_someone_else_is_a_404(world, caller_client):
    url = f"/prospects/{world['karim']}/inscriptions/{world['reg_elodie_a']}/statut"
    assert post(caller_client, url, {}).status_code == 404


def test_register_to_a_lab_from_the_page(app, world, caller_client):
    page = caller_client.get(f"/prospects/{world['elodie']}").get_data(as_text=True)
    select = re.search(r'<select[^>]*name="inscr-lab".*?</select>', page, re.S).group(0)
    assert "Lab B" in select and "Lab A" not in select  # already registered to Lab A
    response = post(
        caller_client,
        f"/prospects/{world['elodie']}/inscriptions",
        {"inscr-lab": str(world["lab_b"]), "inscr-reason": "Recommandée"},
    )
    assert response.status_code == 302
    with app.app_context():
        reg = db.session.scalar(
            sa.select(Registration).where(
                Registration.prospect_id == world["elodie"], Registration.lab_id == world["lab_b"]
            )
        )
        assert reg.status == "to_contact"
    again = post(
        caller_client,
        f"/prospects/{world['elodie']}/inscriptions",
        {"inscr-lab": str(world["lab_a"])},
    )
    assert again.status_code == 302
    page = flashes(caller_client, again.headers["Location"])
    assert "Élodie Lefèvre était déjà inscrit·e à « Lab A »." in page
    refused = post(caller_client, f"/prospects/{world['karim']}/inscriptions", {"inscr-lab": "999"})
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert "Choisissez un open lab dans la liste." in page
    assert "<title>Erreur : " in page and 'href="#inscr-lab"' in page
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 4


def _edit_form(**values: str) -> dict[str, str]:
    form = {k: "" for k in ("first_name", "last_name", "phone", "email", "organisation")}
    form.update({"profile": "", "notes": ""})
    form.update(values)
    return form


def test_edit_renormalises_phone_and_email(app, world, caller_client):
    url = f"/prospects/{world['elodie']}/modifier"
    html = caller_client.get(url).get_data(as_text=True)
    assert 'value="06 12 34 56 78"' in html
    response = post(
        caller_client,
        url,
        _edit_form(
            first_name="Élodie",
            last_name="Lefèvre-Blanc",
            phone="+33 (0)6 99 88 77 66",
            email="  ELODIE@Exemple.fr ",
            source=str(world["salon"]),
        ),
    )
    assert response.status_code == 302
    with app.app_context():
        elodie = db.session.get(Prospect, world["elodie"])
        assert (elodie.phone, elodie.email, elodie.source_id) == (
            "+33699887766",
            "elodie@exemple.fr",
            world["salon"],
        )
        event = db.session.scalar(sa.select(Event).where(Event.kind == "prospect.updated"))
        assert {"phone", "email", "last_name", "source_id"} <= set(event.data["changed"])
    assert names(caller_client.get("/prospects/?q=06 99 88").get_data(as_text=True)) == {
        "Élodie Lefèvre-Blanc"
    }


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("email", "KARIM@mairie-montreuil.fr", "Cette adresse e-mail est déjà celle de Karim"),
        ("phone", "07 81 22 33 44", "Ce numéro de téléphone est déjà celui de Karim"),
    ],
)
def test_edit_refuses_a_contact_of_another_prospect(
    app, world, caller_client, field, value, message
):
    url = f"/prospects/{world['elodie']}/modifier"
    values = {"phone": "06 12 34 56 78", "email": "elodie.lefevre@exemple.fr", field: value}
    response = post(caller_client, url, _edit_form(**values, source=str(world["annuaire"])))
    html = response.get_data(as_text=True).replace("&#39;", "'")
    assert response.status_code == 400
    assert message in html
    assert f'aria-describedby="{field}-erreur"' in html
    with app.app_context():
        assert db.session.get(Prospect, world["elodie"]).phone == "+33612345678"


def test_edit_from_a_stale_form_changes_nothing(app, world, caller_client):
    url = f"/prospects/{world['elodie']}/modifier"
    html = caller_client.get(url).get_data(as_text=True)
    version = re.search(r'name="version" type="hidden" value="(\d+)"', html).group(1)
    with app.app_context():
        db.session.get(Prospect, world["elodie"]).notes = "Modifié ailleurs"
        db.session.commit()
    response = post(
        caller_client,
        url,
        _edit_form(phone="0612345678", notes="Mon texte", version=version, source="1"),
    )
    assert response.status_code == 302
    assert "modifiée par quelqu'un d'autre" in flashes(caller_client, response.headers["Location"])
    with app.app_context():
        assert db.session.get(Prospect, world["elodie"]).notes == "Modifié ailleurs"


def test_forms_without_csrf_token_are_refused(app, world, caller_client):
    response = caller_client.post(
        f"/prospects/{world['elodie']}/qualification", data={"qualif-qualification": "yes"}
    )
    assert response.status_code == 400
    with app.app_context():
        assert db.session.get(Prospect, world["elodie"]).qualification == "unknown"


def test_every_form_of_the_page_carries_a_csrf_token(world, caller_client):
    html = caller_client.get(f"/prospects/{world['karim']}").get_data(as_text=True)
    forms = re.findall(r'<form method="post".*?</form>', html, re.S)
    assert len(forms) >= 5
    assert all("csrf_token" in form for form in forms)


def test_a_status_must_be_chosen(app, world, caller_client):
    reg = world["reg_karim_a"]
    url = f"/prospects/{world['karim']}/inscriptions/{reg}/statut"
    response = post(
        caller_client, url, {f"reg-{reg}-current": "interested", f"reg-{reg}-status": ""}
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Choisissez le nouveau statut dans la liste." in html
    assert f'aria-describedby="reg-{reg}-status-erreur"' in html
    with app.app_context():
        assert db.session.get(Registration, reg).status == "interested"


def test_present_is_not_offered_before_the_lab_day(app, caller_client):
    with app.app_context():
        source = Source(name="Annuaire")
        db.session.add(source)
        soon = (utcnow() + timedelta(days=10)).date()
        lab, _ = create_lab(
            LabInput("Lab futur", soon, time(9), time(13), status="recruiting"), None
        )
        person = Prospect(first_name="Léa", last_name="Petit", phone="+33611112222", source=source)
        db.session.add(person)
        db.session.flush()
        reg, _ = register(person, lab, None)
        db.session.commit()
        ids = (person.id, reg.id)
    page = caller_client.get(f"/prospects/{ids[0]}").get_data(as_text=True)
    select = re.search(rf'<select[^>]*name="reg-{ids[1]}-status".*?</select>', page, re.S)
    assert 'value="confirmed"' in select.group(0) and 'value="attended"' not in select.group(0)
    response = post(
        caller_client,
        f"/prospects/{ids[0]}/inscriptions/{ids[1]}/statut",
        {f"reg-{ids[1]}-current": "to_contact", f"reg-{ids[1]}-status": "attended"},
    )
    assert response.status_code == 302
    html = caller_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Présent ou absent se note à partir du jour de l" in html
    with app.app_context():
        assert db.session.get(Registration, ids[1]).status == "to_contact"


def test_a_number_refused_by_the_operator_says_so_in_text_not_in_a_tooltip(
    app, world, caller_client
):
    with app.app_context():
        prospect = db.session.get(Prospect, world["elodie"])
        prospect.sms_blocked_at = utcnow()
        db.session.commit()
    page = caller_client.get(f"/prospects/{world['elodie']}").get_data(as_text=True)
    page = page.replace("&#39;", "'")
    assert "SMS refusés par l'opérateur" in page
    assert "l'opérateur refuse les SMS vers ce numéro. Les appels restent possibles." in page
    assert 'title="Depuis le' not in page
