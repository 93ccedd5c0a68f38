"""The prospect rules without HTTP: cleaning, the merge rule, permissions and search."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.models import Consent, Event, Prospect, Source
from crm.services.prospects import (
    ProspectError,
    ProspectInput,
    merge_updates,
    qualify,
    save,
    search_query,
    set_permission,
)


@pytest.fixture
def source(app_ctx):
    src = Source(name="Annuaire")
    db.session.add(src)
    db.session.commit()
    return src


def _save(source, **values):
    prospect, created = save(ProspectInput(**values), source, actor=None)
    db.session.commit()
    return prospect, created


@pytest.mark.parametrize(
    "existing,incoming,expected",
    [
        ({"first_name": ""}, {"first_name": "Ana"}, {"first_name": "Ana"}),
        ({"first_name": "Ana"}, {"first_name": "Anna"}, {}),
        ({"email": None}, {"email": "a@b.fr"}, {"email": "a@b.fr"}),
        ({"phone": "+33612345678"}, {"phone": None}, {}),
        ({"notes": "Vu au salon"}, {"notes": "Rappeler"}, {"notes": "Vu au salon\nRappeler"}),
        ({"notes": "Rappeler"}, {"notes": "Rappeler"}, {}),
    ],
)
def test_merge_fills_empty_fields_and_keeps_existing_ones(existing, incoming, expected):
    assert merge_updates(existing, incoming) == expected


def test_same_phone_in_another_format_is_the_same_person(source):
    first, created = _save(source, first_name="Élodie", phone="06 12 34 56 78")
    assert created
    second, created = _save(
        source, last_name="Martin", phone="+33 6 12 34 56 78", email="E.Martin@Exemple.fr"
    )
    assert not created and second.id == first.id
    assert (second.first_name, second.last_name, second.email) == (
        "Élodie",
        "Martin",
        "e.martin@exemple.fr",
    )
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Prospect)) == 1
    kinds = db.session.scalars(sa.select(Event.kind).order_by(Event.id)).all()
    assert kinds == ["prospect.created", "prospect.merged"]


def test_same_email_any_case_is_the_same_person(source):
    first, _ = _save(source, email="jean@exemple.fr", organisation="Mairie")
    second, created = _save(source, email="JEAN@EXEMPLE.FR", organisation="Préfecture")
    assert not created and second.id == first.id and second.organisation == "Mairie"


def test_a_merge_never_takes_a_contact_of_someone_else(source):
    a, _ = _save(source, phone="0612345678")
    b, _ = _save(source, email="b@exemple.fr")
    merged, created = _save(source, phone="0612345678", email="b@exemple.fr")
    assert not created and merged.id == a.id and a.email is None and b.email == "b@exemple.fr"


def test_bad_phone_with_good_email_is_kept_and_flagged(source):
    prospect, _ = _save(source, phone="06 12 34", email="x@exemple.fr")
    assert prospect.phone is None and prospect.phone_raw == "06 12 34" and prospect.phone_invalid


@pytest.mark.parametrize(
    "values,message",
    [
        ({"first_name": "Sans contact"}, "Aucun moyen de contact"),
        ({"phone": "12"}, "Numéro de téléphone illisible"),
        ({"email": "pas-un-email"}, "Adresse e-mail invalide"),
    ],
)
def test_a_person_without_a_way_to_contact_is_refused(source, values, message):
    with pytest.raises(ProspectError, match=message):
        save(ProspectInput(**values), source, None)


def test_permissions_are_ledgered_only_when_they_change(source):
    prospect, _ = _save(source, phone="0612345678")
    assert set_permission(prospect, "sms", True, "oral", None, from_person=True)
    assert set_permission(prospect, "sms", True, "oral", None) is None
    set_permission(prospect, "sms", False, "sms_keyword", None, from_person=True)
    db.session.commit()
    rows = db.session.scalars(sa.select(Consent).order_by(Consent.id)).all()
    assert [(r.granted, r.method, r.from_person) for r in rows] == [
        (True, "oral", True),
        (False, "sms_keyword", True),
    ]
    assert not prospect.allow_sms and rows[0].recorded_at.tzinfo is not None


def test_disqualifying_needs_a_reason(source):
    prospect, _ = _save(source, phone="0612345678")
    with pytest.raises(ProspectError, match="Indiquez pourquoi"):
        qualify(prospect, "no", "  ", None)
    qualify(prospect, "no", "Pas concerné par le service", None)
    assert prospect.disqualification_reason == "Pas concerné par le service"


@pytest.mark.parametrize(
    "text",
    [
        "élodie",
        "ELODIE",
        "lefèvre",
        "06 12 34 56 78",
        "06.12.34.56.78",
        "+33 6 12 34 56 78",
        "0033612345678",
        "06 12",
        "ELODIE.L@",
        "préfecture du rhône",
        "rhone",
    ],
)
def test_search_finds_by_name_phone_email_or_organisation(source, text):
    target, _ = _save(
        source,
        first_name="Élodie",
        last_name="Lefèvre",
        phone="0612345678",
        email="elodie.l@exemple.fr",
        organisation="Préfecture du Rhône",
    )
    _save(source, first_name="Hugo", phone="0798765432", organisation="Mairie")
    found = db.session.scalars(search_query(text)).all()
    assert [p.id for p in found] == [target.id]


def test_search_escapes_like_wildcards(source):
    _save(source, first_name="Hugo", phone="0798765432")
    assert db.session.scalars(search_query("%")).all() == []
    assert db.session.scalars(search_query("_")).all() == []
