"""Data subject requests: export one person's data, erase it everywhere, keep them out."""

from __future__ import annotations

import csv
import hashlib
import hmac
import html
import io
import json
import zipfile
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.models import (
    AuditEntry,
    Call,
    CallTask,
    Consent,
    Event,
    FollowUp,
    ImportBatch,
    ImportRejection,
    InboundMessage,
    Lab,
    Message,
    Prospect,
    Registration,
    Sequence,
    SequenceStep,
    Suppression,
)
from crm.services import erasure, imports, replies
from crm.services.privacy import REIMPORT_REFUSED
from crm.services.prospect_records import ContactTaken, update_prospect
from crm.services.prospects import ProspectError, ProspectInput, qualify, save, set_permission
from crm.services.registrations import register, transition
from crm.timeutil import utcnow
from tests.conftest import csrf_token, login
from tests.integration.conftest import saved_meanwhile

PHONE = "+33612345678"
EMAIL = "zebulon.q@exemple.fr"
FIRST, LAST = "Zébulon", "Quintessard"
# Every form the person's identity could take in a column.
NEEDLES = (
    PHONE,
    "33612345678",
    "0612345678",
    "06 12 34 56 78",
    "06.12.34.56.78",
    EMAIL,
    FIRST,
    "Zebulon",
    LAST,
)


def the_person(world: dict[str, Any]) -> Prospect:
    """A person present in every table that can hold personal data."""
    # An SMS from their number before we knew them: stored as from an unknown sender.
    replies.receive({"MessageSid": "SM0", "From": PHONE, "To": "+33700000000", "Body": "?"})
    assert stored_sms("SM0")
    prospect, _ = save(
        ProspectInput(
            first_name=FIRST,
            last_name=LAST,
            phone="06 12 34 56 78",
            email=EMAIL,
            organisation="Mairie de Zébulon-sur-Mer",
            profile="Agent d'accueil",
            notes='=HYPERLINK("x") Zébulon préfère le matin',
        ),
        world["source"],
        world["alice"],
        "saisie",
    )
    set_permission(
        prospect, "sms", True, "oral", world["alice"], True, f"{FIRST} d'accord au 0612345678"
    )
    qualify(prospect, "no", f"{FIRST} {LAST} est retraité", world["alice"])
    registration, _ = register(prospect, world["lab"], world["alice"], f"appel de {FIRST}")
    past = Lab(
        title="Ancien lab",
        starts_at=utcnow() - timedelta(days=60),
        ends_at=utcnow() - timedelta(days=60) + timedelta(hours=4),
        status="done",
    )
    db.session.add(past)
    db.session.flush()
    old, _ = register(prospect, past, None)
    transition(old, "attended", None)
    sequence = Sequence(lab_id=world["lab"].id, kind="reminders", name="Rappels")
    step = SequenceStep(sequence=sequence, position=1, channel="sms", offset_minutes=0, body="x")
    db.session.add_all([sequence, step])
    db.session.flush()
    db.session.add_all(
        [
            FollowUp(registration_id=registration.id, step_id=step.id, due_at=utcnow()),
            Call(
                prospect_id=prospect.id,
                lab_id=world["lab"].id,
                registration_id=registration.id,
                caller_id=world["alice"].id,
                outcome="callback",
                notes=f"{FIRST} rappeler au 06 12 34 56 78",
            ),
            CallTask(
                registration_id=registration.id,
                lab_id=world["lab"].id,
                prospect_id=prospect.id,
                kind="callback",
                note=f"Rappeler {FIRST} {LAST}",
            ),
            Message(
                channel="sms",
                backend="outbox",
                to_address=PHONE,
                body=f"Bonjour {FIRST}, vous êtes invité·e.",
                status="failed",
                error=f"Le numéro {PHONE} est injoignable",
                prospect_id=prospect.id,
            ),
            Message(
                channel="email",
                backend="outbox",
                to_address=EMAIL,
                subject=f"{FIRST}, votre invitation",
                body=f"Bonjour {FIRST} {LAST}",
                html=f"<p>Bonjour {FIRST}</p>",
                list_unsubscribe=f"<mailto:stop@exemple.fr?subject={EMAIL}>",
                status="sent",
                prospect_id=prospect.id,
            ),
        ]
    )
    batch = ImportBatch(filename="liste.csv", encoding="utf-8", delimiter=";", status="done")
    db.session.add(batch)
    db.session.flush()
    db.session.add_all(
        [
            ImportRejection(
                import_id=batch.id,
                line_number=2,
                raw=f"{FIRST};{LAST};06 12 34 56 78;;Mairie",
                reason="Colonnes",
            ),
            ImportRejection(
                import_id=batch.id, line_number=3, raw="Autre;Personne;0699999999", reason="X"
            ),
        ]
    )
    db.session.commit()
    replies.receive(
        {
            "MessageSid": "SM1",
            "From": PHONE,
            "To": "+33700000000",
            "Body": f"Peut-être, signé {FIRST} {LAST} 06 12 34 56 78",
        }
    )
    assert stored_sms("SM1")
    return prospect


def stored_sms(sid: str) -> bool:
    query = sa.select(InboundMessage.id).where(InboundMessage.message_sid == sid)
    return db.session.scalar(query) is not None


def traces(needles: tuple[str, ...] = NEEDLES) -> list[str]:
    """Every (table.column) holding one of the needles, in any text or JSON column."""
    found = []
    lowered = [n.lower() for n in needles]
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(sa.select(table)).mappings():
            for column, value in row.items():
                if isinstance(value, str):
                    text = value
                elif isinstance(value, dict | list):
                    text = json.dumps(value, ensure_ascii=False)
                else:
                    continue
                for needle in lowered:
                    if needle in text.lower():
                        found.append(f"{table.name}.{column} ∋ {needle}")
    return found


def count(model: Any, *where: Any) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0


def test_the_person_is_everywhere_before_erasure(world):
    the_person(world)
    tables = {t.split(".")[0] for t in traces()}
    expected = {"prospects", "messages", "inbound_messages", "calls", "call_tasks", "consents"}
    assert expected | {"events", "import_rejections"} <= tables


def test_erasure_leaves_no_trace_in_any_table(world, app):
    prospect = the_person(world)
    pid = prospect.id
    assert count(Registration, Registration.prospect_id == pid) == 2
    result = erasure.erase(prospect, world["manager"])
    db.session.commit()
    db.session.expire_all()

    assert traces() == []
    erased = db.session.get(Prospect, pid)
    assert erased.full_name == "Personne effacée"
    assert (erased.phone, erased.phone_raw, erased.email) == (None, None, None)
    assert erased.erased_at is not None
    assert erased.qualification == "no"  # anonymous statistics are kept
    assert not (erased.allow_sms or erased.allow_email or erased.allow_phone)
    statuses = dict(
        db.session.execute(
            sa.select(Lab.title, Registration.status)
            .join(Lab, Lab.id == Registration.lab_id)
            .where(Registration.prospect_id == pid)
        ).all()
    )
    assert statuses == {"Lab": "cancelled", "Ancien lab": "attended"}
    assert count(FollowUp, FollowUp.status.in_(("scheduled", "queued"))) == 0
    assert count(CallTask, CallTask.status == "open") == 0
    assert count(Consent, Consent.prospect_id == pid) == 1  # the ledger row stays, anonymous
    assert count(InboundMessage) == 2 and count(Message) == 2
    assert count(Event, Event.prospect_id == pid) > 0
    assert [r.raw for r in db.session.scalars(sa.select(ImportRejection))] == [
        "Autre;Personne;0699999999"
    ]
    key = app.config["SECRET_KEY"].encode()
    digests = {(s.kind, s.digest) for s in db.session.scalars(sa.select(Suppression))}
    assert digests == {
        ("phone", hmac.new(key, PHONE.encode(), hashlib.sha256).hexdigest()),
        ("email", hmac.new(key, EMAIL.encode(), hashlib.sha256).hexdigest()),
    }
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "prospect.erased"))
    assert entry.object_id == pid and entry.actor_id == world["manager"].id
    assert result.counts["messages"] == 2 and result.counts["sms_recus"] == 2
    # A second erasure finds nothing left to do.
    assert erasure.erase(erased, None).already


def test_an_erased_person_is_not_imported_again(world, tmp_path):
    erasure.erase(the_person(world), None)
    db.session.commit()
    path = tmp_path / "retour.csv"
    path.write_text(
        "Prénom;Nom;Portable;Courriel\r\n"
        f"{FIRST};{LAST};+33 6 12 34 56 78;\r\n"
        f"Z;Q;;{EMAIL.upper()}\r\n"
        "Nouvelle;Personne;0698765432;\r\n",
        encoding="utf-8",
    )
    before = count(Prospect)
    batch = imports.import_file(path, "Annuaire")
    assert (batch.created_count, batch.merged_count, batch.rejected_count) == (1, 0, 2)
    assert count(Prospect) == before + 1
    rejected = db.session.scalars(
        sa.select(ImportRejection)
        .where(ImportRejection.import_id == batch.id)
        .order_by(ImportRejection.line_number)
    ).all()
    assert [(r.line_number, r.reason) for r in rejected] == [
        (2, REIMPORT_REFUSED),
        (3, REIMPORT_REFUSED),
    ]
    assert traces((PHONE, EMAIL, LAST)) == []  # the rejected rows keep no text


def test_saving_an_erased_person_again_is_refused(world):
    erasure.erase(the_person(world), None)
    db.session.commit()
    for data in (ProspectInput(phone="06 12 34 56 78"), ProspectInput(email=EMAIL.upper())):
        with pytest.raises(ProspectError, match="effacement"):
            save(data, world["source"], None)
    # Nor typed by hand into someone else's record.
    mine = {"first_name": "Autre", "phone": "07 81 23 45 67"}
    other, _ = save(ProspectInput(**mine), world["source"], None)
    for field, value in (("phone", "06 12 34 56 78"), ("email", EMAIL)):
        with pytest.raises(ContactTaken, match="effacement") as refused:
            update_prospect(other, ProspectInput(**{**mine, field: value}), world["source"], None)
        assert refused.value.field == field


def test_erasing_while_someone_saves_the_person_erases_nothing(world, manager_client):
    pid = the_person(world).id
    token = csrf_token(manager_client, f"/prospects/{pid}/donnees-personnelles")
    with saved_meanwhile(Prospect, pid):
        response = manager_client.post(
            f"/prospects/{pid}/effacement", data={"csrf_token": token, "confirm": "y"}
        )
    assert response.status_code == 302 and response.location.endswith(f"/prospects/{pid}")
    page = html.unescape(manager_client.get(response.location).get_data(as_text=True))
    assert "modifiée par quelqu'un d'autre au même instant : rien n'a été effacé" in page
    db.session.expire_all()
    assert db.session.get(Prospect, pid).erased_at is None
    assert db.session.get(Prospect, pid).phone == PHONE


def test_manager_erases_after_confirming(world, manager_client):
    pid = the_person(world).id
    page = manager_client.get(f"/prospects/{pid}/donnees-personnelles")
    assert page.status_code == 200
    assert "Effacer définitivement" in page.get_data(as_text=True)
    token = csrf_token(manager_client, f"/prospects/{pid}/donnees-personnelles")
    refused = manager_client.post(f"/prospects/{pid}/effacement", data={"csrf_token": token})
    assert refused.status_code == 400
    assert "Cochez la case" in refused.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Prospect, pid).erased_at is None
    no_csrf = manager_client.post(f"/prospects/{pid}/effacement", data={"confirm": "y"})
    assert no_csrf.status_code == 400
    done = manager_client.post(
        f"/prospects/{pid}/effacement", data={"csrf_token": token, "confirm": "y"}
    )
    assert done.status_code == 302 and done.location.endswith(f"/prospects/{pid}")
    db.session.expire_all()
    assert db.session.get(Prospect, pid).erased_at is not None
    assert traces() == []
    shown = manager_client.get(f"/prospects/{pid}").get_data(as_text=True)
    assert "Données personnelles effacées" in shown


def test_callers_cannot_export_or_erase(world, caller_client):
    pid = the_person(world).id
    for path in ("", ".json", ".zip"):
        assert caller_client.get(f"/prospects/{pid}/donnees-personnelles{path}").status_code == 403
    token = csrf_token(caller_client, "/prospects/")
    answer = caller_client.post(
        f"/prospects/{pid}/effacement", data={"csrf_token": token, "confirm": "y"}
    )
    assert answer.status_code == 403
    page = caller_client.get(f"/prospects/{pid}").get_data(as_text=True)
    assert f"/prospects/{pid}/donnees-personnelles" not in page  # the footer's notice is public


def test_json_export_holds_everything(world, manager_client):
    pid = the_person(world).id
    response = manager_client.get(f"/prospects/{pid}/donnees-personnelles.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    document = response.get_json()
    assert document["personne"]["phone"] == PHONE
    assert document["personne"]["email"] == EMAIL
    assert len(document["inscriptions"]) == 2
    assert {r["open_lab"] for r in document["inscriptions"]} == {"Lab", "Ancien lab"}
    assert {m["body"] for m in document["messages_envoyes"]} == {
        f"Bonjour {FIRST}, vous êtes invité·e.",
        f"Bonjour {FIRST} {LAST}",
    }
    assert {m["message_sid"] for m in document["sms_recus"]} == {"SM0", "SM1"}
    assert document["registre_autorisations"][0]["basis"].startswith(FIRST)
    assert document["appels"][0]["notes"].startswith(FIRST)
    assert document["taches_appel"] and document["relances"]
    assert {"prospect.created", "consent.changed", "reply.received"} <= {
        e["kind"] for e in document["evenements"]
    }
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "prospect.exported"))
    assert entry.object_id == pid and entry.detail == {"format": "json"}


def test_csv_export_is_a_zip_of_french_excel_csvs(world, manager_client):
    pid = the_person(world).id
    response = manager_client.get(f"/prospects/{pid}/donnees-personnelles.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    names = set(archive.namelist())
    assert {"personne.csv", "inscriptions.csv", "messages_envoyes.csv", "sms_recus.csv"} <= names
    assert {"registre_autorisations.csv", "evenements.csv", "appels.csv", "relances.csv"} <= names
    raw = archive.read("personne.csv").decode("utf-8")
    assert raw.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(raw[1:]), delimiter=";"))
    assert rows[0]["email"] == EMAIL
    assert rows[0]["notes"].startswith("'=HYPERLINK")  # never run as a formula
    assert rows[0]["phone"] == "'" + PHONE  # a leading + is neutralised too
    offers = archive.read("propositions_de_place.csv").decode("utf-8")
    assert offers.startswith("\ufeffid;")  # an empty table still has its header


def test_cli_erases_by_phone_or_email(world, app):
    pid = the_person(world).id
    db.session.commit()
    runner = app.test_cli_runner()
    usage = runner.invoke(args=["crm", "erase"])
    assert usage.exit_code == 2
    kept = runner.invoke(args=["crm", "erase", "--phone", "06 12 34 56 78"], input="n\n")
    assert kept.exit_code == 1
    db.session.expire_all()
    assert db.session.get(Prospect, pid).erased_at is None
    done = runner.invoke(args=["crm", "erase", "--email", EMAIL.upper(), "--yes"])
    assert done.exit_code == 0, done.output
    assert f"Fiche n° {pid} effacée" in done.output
    again = runner.invoke(args=["crm", "erase", "--phone", PHONE, "--yes"])
    assert again.exit_code == 1 and "Aucune personne" in again.output
    db.session.expire_all()
    assert db.session.get(Prospect, pid).erased_at is not None
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "prospect.erased"))
    assert entry.actor_label == "ligne de commande" and entry.actor_id is None
    assert traces() == []


def test_erasure_by_an_admin_through_the_page(world, client, make_user):
    admin = make_user("admin")
    assert login(client, admin.email).status_code == 302
    pid = the_person(world).id
    token = csrf_token(client, f"/prospects/{pid}/donnees-personnelles")
    answer = client.post(f"/prospects/{pid}/effacement", data={"csrf_token": token, "confirm": "y"})
    assert answer.status_code == 302
    assert traces() == []
