"""The lab CSV export over HTTP: BOM, semicolons, French headers, Paris times, no formulas."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.models import Event, Prospect, Registration, Source
from crm.services.labs import LabInput, create_lab
from crm.services.prospects import ProspectInput, qualify, save
from crm.services.registrations import register, transition


@pytest.fixture
def lab_id(app) -> int:  # type: ignore[no-untyped-def]
    with app.app_context():
        source = Source(name="=Annuaire")  # a hostile source name
        db.session.add(source)
        lab, _ = create_lab(LabInput("Lab export", date(2026, 3, 3), time(9), time(13)), None)
        people = [
            ProspectInput(
                first_name="Élodie",
                last_name="Lefèvre",
                phone="06 12 34 56 78",
                email="elodie@exemple.fr",
                organisation="Préfecture du Rhône",
                profile="Agent d'accueil",
            ),
            ProspectInput(
                first_name='=HYPERLINK("http://evil.example";"x")',
                last_name="@Martin",
                phone="+44 20 7946 0000",
                organisation="-Mairie",
                profile="+1",
            ),
            ProspectInput(first_name="Zoé", last_name="Durand", phone="12 34", email="z@caf.fr"),
        ]
        for i, data in enumerate(people):
            prospect, _ = save(data, source, None)
            reg, _ = register(prospect, lab, None)
            if i == 0:
                transition(reg, "confirmed", None)
            if i == 2:
                qualify(prospect, "no", "Plus à l'accueil", None)
        db.session.flush()
        # A fixed registration time, to check the Paris conversion (UTC+1 in March).
        db.session.execute(
            sa.update(Registration).values(created_at=datetime(2026, 2, 10, 16, 5, tzinfo=UTC))
        )
        db.session.commit()
        return lab.id


def read(response) -> list[list[str]]:  # type: ignore[no-untyped-def]
    body = response.data
    assert body.startswith(b"\xef\xbb\xbf"), "UTF-8 BOM for French Excel"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))


def test_manager_exports_the_registrations_of_a_lab(app, lab_id, manager_client):
    response = manager_client.get(f"/labs/{lab_id}/export.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="open-lab-{lab_id}-2026-03-03-inscriptions.csv"'
    )
    assert response.is_streamed
    rows = read(response)
    assert rows[0] == [
        "prénom",
        "nom",
        "téléphone",
        "e-mail",
        "structure",
        "profil",
        "source",
        "qualification",
        "motif hors cible",
        "statut",
        "inscrit le",
        "statut modifié le",
    ]
    by_name = {row[1]: row for row in rows[1:]}
    assert len(by_name) == 3
    elodie = by_name["Lefèvre"]
    assert elodie[:8] == [
        "Élodie",
        "Lefèvre",
        "06 12 34 56 78",
        "elodie@exemple.fr",
        "Préfecture du Rhône",
        "Agent d'accueil",
        "'=Annuaire",
        "À qualifier",
    ]
    assert elodie[9] == "Confirmé"
    assert elodie[10] == "10/02/2026 17:05"  # 16:05 UTC is 17:05 in Paris
    hostile = by_name["'@Martin"]
    assert hostile[0] == '\'=HYPERLINK("http://evil.example";"x")'
    assert hostile[2] == "'+44 20 7946 0000"
    assert hostile[4] == "'-Mairie" and hostile[5] == "'+1"
    zoe = by_name["Durand"]
    assert zoe[2] == "12 34" and zoe[7] == "Hors cible" and zoe[8] == "Plus à l'accueil"
    for row in rows[1:]:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)
    with app.app_context():
        event = db.session.scalar(sa.select(Event).where(Event.kind == "lab.exported"))
        assert event.lab_id == lab_id and event.actor.email == "manager@test.fr"


def test_export_of_the_confirmed_only(lab_id, manager_client):
    response = manager_client.get(f"/labs/{lab_id}/export.csv?statut=confirmed")
    rows = read(response)
    assert [row[1] for row in rows[1:]] == ["Lefèvre"]
    assert "confirmes.csv" in response.headers["Content-Disposition"]


def test_a_large_lab_streams_in_chunks(app, manager_client):
    with app.app_context():
        source = Source(name="Annuaire")
        db.session.add(source)
        lab, _ = create_lab(LabInput("Grand lab", date(2026, 3, 3), time(9), time(18)), None)
        db.session.flush()
        for i in range(1200):
            prospect = Prospect(first_name=f"P{i}", email=f"p{i}@exemple.fr", source=source)
            db.session.add(prospect)
            db.session.flush()
            db.session.add(Registration(prospect_id=prospect.id, lab_id=lab.id))
        db.session.commit()
        lab_id = lab.id
    response = manager_client.get(f"/labs/{lab_id}/export.csv")
    chunks = list(response.response)
    assert len(chunks) >= 3  # 500 rows a chunk
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode("utf-8-sig")), delimiter=";"))
    assert len(rows) == 1201


def test_callers_cannot_export(lab_id, caller_client):
    assert caller_client.get(f"/labs/{lab_id}/export.csv").status_code == 403
