"""The audit trail: written on views, exports and erasures; read by managers; never changed."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.models import AppendOnlyError, AuditEntry, Prospect
from crm.services import audit
from tests.conftest import csrf_token


def entries(action: str | None = None) -> list[AuditEntry]:
    query = sa.select(AuditEntry).order_by(AuditEntry.id)
    if action:
        query = query.where(AuditEntry.action == action)
    return list(db.session.scalars(query))


@pytest.fixture
def prospect_id(world) -> int:
    prospect = Prospect(source=world["source"], first_name="Aline", phone="+33611223344")
    db.session.add(prospect)
    db.session.commit()
    return prospect.id


def test_outside_a_request_the_actor_is_the_command_line(app_ctx):
    audit.record("prospect.viewed", "prospect", 7)
    db.session.commit()
    (entry,) = entries()
    assert (entry.actor_id, entry.actor_label, entry.ip) == (None, "ligne de commande", "")
    assert entry.at is not None and entry.at.tzinfo is not None


def test_phone_numbers_and_emails_never_reach_the_detail(app_ctx):
    audit.record(
        "prospect.changed",
        "prospect",
        1,
        {
            "a": "+33 6 12 34 56 78",
            "b": ["ok", "x@y.fr"],
            "c": {"d": "0612345678"},
            "jour": "2024-01-02",
            "champs": ["phone", "email"],
            "n": 3,
        },
    )
    db.session.commit()
    assert entries()[0].detail == {
        "a": "(masqué)",
        "b": ["ok", "(masqué)"],
        "c": {"d": "(masqué)"},
        "jour": "2024-01-02",
        "champs": ["phone", "email"],
        "n": 3,
    }


def test_unknown_actions_are_refused(app_ctx):
    with pytest.raises(ValueError):
        audit.record("prospect.deleted", "prospect", 1)


def test_entries_cannot_be_changed_or_deleted(app_ctx):
    entry = audit.record("prospect.viewed", "prospect", 1)
    db.session.commit()
    entry.action = "prospect.changed"
    with pytest.raises(AppendOnlyError):
        db.session.commit()
    db.session.rollback()
    db.session.delete(db.session.get(AuditEntry, entry.id))
    with pytest.raises(AppendOnlyError):
        db.session.commit()
    db.session.rollback()
    assert [e.action for e in entries()] == ["prospect.viewed"]


def test_no_route_writes_the_audit_trail(app):
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("privacy.audit")]
    assert rules
    for rule in rules:
        assert rule.methods <= {"GET", "HEAD", "OPTIONS"}


def test_viewing_and_changing_a_prospect_are_audited(world, prospect_id, manager_client):
    assert manager_client.get(f"/prospects/{prospect_id}").status_code == 200
    (viewed,) = entries("prospect.viewed")
    manager = db.session.scalar(sa.select(AuditEntry.actor_id))
    assert viewed.object_type == "prospect" and viewed.object_id == prospect_id
    assert viewed.actor_id == manager and viewed.actor_label == "manager@test.fr"
    assert viewed.ip == "127.0.0.1"
    token = csrf_token(manager_client, f"/prospects/{prospect_id}")
    answer = manager_client.post(
        f"/prospects/{prospect_id}/permissions",
        data={
            "csrf_token": token,
            "perm-channel": "sms",
            "perm-method": "oral",
            "perm-granted": "1",
            "perm-from_person": "1",
            "perm-basis": "Accord au 06 11 22 33 44",
        },
    )
    assert answer.status_code == 302
    edit = manager_client.get(f"/prospects/{prospect_id}/modifier").get_data(as_text=True)
    version = re.search(r'name="version" type="hidden" value="(\d+)"', edit)
    assert version
    answer = manager_client.post(
        f"/prospects/{prospect_id}/modifier",
        data={
            "csrf_token": token,
            "first_name": "Aline",
            "last_name": "Durand",
            "phone": "06 11 22 33 44",
            "email": "",
            "organisation": "",
            "profile": "",
            "notes": "",
            "source": str(world["source"].id),
            "version": version.group(1),
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    changed = [e.detail for e in entries("prospect.changed")]
    assert changed == [{"autorisation": "sms", "accordee": True}, {"champs": ["last_name"]}]


def test_a_lab_export_is_audited(world, manager_client):
    lab_id = world["lab"].id
    assert manager_client.get(f"/labs/{lab_id}/export.csv").status_code == 200
    (entry,) = entries("list.exported")
    assert entry.object_type == "lab" and entry.object_id == lab_id


def test_managers_read_the_trail_newest_first_with_filters(app, prospect_id, manager_client):
    with app.app_context():
        for number in range(60):
            audit.record("prospect.viewed", "prospect", prospect_id if number % 2 else 999)
        audit.record("prospect.erased", "prospect", 999)
        db.session.commit()
    first = manager_client.get("/audit/").get_data(as_text=True)
    assert first.index("<td>Personne effacée</td>") < first.index("<td>Fiche consultée</td>")
    assert "Page 1 sur 2" in first
    second = manager_client.get("/audit/?page=2").get_data(as_text=True)
    assert second.count("Fiche n° ") == 11
    by_action = manager_client.get("/audit/?action=prospect.erased").get_data(as_text=True)
    assert by_action.count("Fiche n° 999") == 1
    by_person = manager_client.get(f"/audit/?personne={prospect_id}").get_data(as_text=True)
    assert by_person.count(f"Fiche n° {prospect_id}<") == 30
    assert "Fiche n° 999" not in by_person
    nonsense = manager_client.get("/audit/?action=drop&personne=x&page=abc")
    assert nonsense.status_code == 200


def test_the_trail_reads_in_french(app, prospect_id, manager_client):
    with app.app_context():
        audit.record("prospect.changed", "prospect", prospect_id, {"champs": ["first_name"]})
        detail = {"autorisation": "sms", "accordee": False}
        audit.record("prospect.changed", "prospect", prospect_id, detail)
        detail = {"liste": "tableau de bord", "etape": "invited", "lignes": 3}
        audit.record("list.exported", "dashboard", None, detail)
        db.session.commit()
    page = manager_client.get("/audit/").get_data(as_text=True).replace("&#39;", "'")
    assert "champs modifiés : Prénom" in page
    assert "autorisation : SMS · accordée : Non" in page
    assert "liste : tableau de bord · étape : Invités · lignes : 3" in page
    assert "<td>Tableau de bord</td>" in page
    for raw in ("first_name", "False", "invited", "dashboard<"):
        assert raw not in page


def test_callers_cannot_read_the_trail(caller_client):
    assert caller_client.get("/audit/").status_code == 403
