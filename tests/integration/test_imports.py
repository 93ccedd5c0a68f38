"""CSV import through the real views, the CLI and a real RQ worker."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.models import (
    Consent,
    Event,
    ImportBatch,
    ImportRejection,
    Lab,
    Prospect,
    Registration,
    Source,
)
from crm.services import imports
from crm.services.prospects import ProspectInput, save, set_permission
from crm.services.registrations import register
from crm.timeutil import utcnow
from tests.conftest import csrf_token
from workers.queues import IMPORTS

BIN = Path(sys.executable).parent
HEADER = "Prénom;Nom;Portable;Courriel;Structure;Commentaire\r\n"


class FormDefaults(HTMLParser):
    """What a browser would submit for the mapping form as displayed (selected options)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select:
            if "selected" in a or self._select not in self.values:  # else the first option
                self.values[self._select] = a.get("value") or ""
        elif tag == "input" and a.get("type") not in ("checkbox", "file") and a.get("name"):
            self.values[a["name"] or ""] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def form_defaults(html: str) -> dict[str, str]:
    parser = FormDefaults()
    parser.feed(html)
    return parser.values


def count(model) -> int:  # type: ignore[no-untyped-def]
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def upload(client, data: bytes, name: str = "liste.csv"):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/imports/nouveau")
    return client.post(
        "/imports/nouveau",
        data={"csrf_token": token, "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def import_file(client, data: bytes, **choices: str | list[str]):  # type: ignore[no-untyped-def]
    """Upload, keep the guessed mapping, set `choices`, submit: the response of the mapping."""
    response = upload(client, data)
    assert response.status_code == 302, response.get_data(as_text=True)
    mapping_url = response.headers["Location"]
    values: dict[str, str | list[str]] = dict(form_defaults(client.get(mapping_url).text))
    values.update({"source": "nouvelle", "new_source": "Salon des maires"})
    values.update(choices)
    return client.post(mapping_url, data=values)


def import_id_of(response) -> int:  # type: ignore[no-untyped-def]
    return int(re.search(r"/imports/(\d+)", response.headers["Location"]).group(1))


def imports_folder(app) -> Path:  # type: ignore[no-untyped-def]
    return Path(app.config["INSTANCE_DIR"]) / "imports"


@pytest.fixture
def lab(app):  # type: ignore[no-untyped-def]
    with app.app_context():
        start = utcnow() + timedelta(days=10)
        lab = Lab(title="Lab accueil", starts_at=start, ends_at=start + timedelta(hours=3))
        lab.status = "recruiting"
        db.session.add(lab)
        db.session.commit()
        return lab.id


def test_upload_mapping_result(manager_client, app):
    data = (
        HEADER
        + "Léa;Martin;06 12 34 56 78;lea@exemple.fr;Préfecture du Rhône;Vue au salon\r\n"
        + "Œdipe;Lefèvre;07 98 76 54 32;;CAF;\r\n"
    ).encode("cp1252")
    response = upload(manager_client, data)
    assert response.status_code == 302
    mapping_page = manager_client.get(response.headers["Location"])
    html = mapping_page.text
    assert mapping_page.status_code == 200
    assert "Œdipe" in html and "Préfecture du Rhône" in html  # the preview, decoded
    assert "Windows-1252" in html and "point-virgule" in html
    guessed = form_defaults(html)
    assert [guessed[f"col_{i}"] for i in range(6)] == [
        "first_name",
        "last_name",
        "phone",
        "email",
        "organisation",
        "notes",
    ]
    assert 'class="fr-table' in html and "<label" in html

    response = import_file(manager_client, data)
    assert response.status_code == 302
    result = manager_client.get(response.headers["Location"])
    assert result.status_code == 200
    text = result.text
    assert "Import terminé" in text
    assert re.search(r'id="compteur-crees">2<', text)
    assert re.search(r'id="compteur-fusionnes">0<', text)
    with app.app_context():
        batch = db.session.scalar(sa.select(ImportBatch).order_by(ImportBatch.id.desc()))
        assert (batch.status, batch.created_count, batch.total_rows) == ("done", 2, 2)
        assert batch.finished_at.tzinfo is not None
        lea = db.session.scalar(sa.select(Prospect).where(Prospect.email == "lea@exemple.fr"))
        assert (lea.phone, lea.organisation, lea.notes) == (
            "+33612345678",
            "Préfecture du Rhône",
            "Vue au salon",
        )
        assert lea.source.name == "Salon des maires"
        assert not (lea.allow_sms or lea.allow_email or lea.allow_phone)
        assert count(Consent) == 0
        event = db.session.scalar(sa.select(Event).where(Event.prospect_id == lea.id))
        assert event.kind == "prospect.created" and event.data["import_id"] == batch.id
        assert abs(event.created_at - utcnow()) < timedelta(minutes=5)  # aware UTC, now
        assert lea.created_at.tzinfo is not None and lea.version == 1
        assert "liste.csv" in event.reason
        assert db.session.scalar(sa.select(Event.kind).where(Event.kind == "import.done"))
        assert not (imports_folder(app) / f"{batch.id}.csv").exists()  # no copy kept


def test_only_managers_import(caller_client):
    assert caller_client.get("/imports/nouveau").status_code == 403


BAD_FILES = [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "image.png", "image PNG"),
    (b"Nom;Email\r\nA;a@b.fr\x00\x00\x01", "liste.csv", "contenu binaire"),
    (b"", "vide.csv", "Le fichier est vide."),
    (HEADER.encode("utf-8"), "entete.csv", "qu&#39;une ligne d&#39;en-tête"),
]


@pytest.mark.parametrize(("data", "name", "message"), BAD_FILES, ids=["png", "nul", "empty", "hdr"])
def test_bad_files_are_refused_on_the_upload_page(manager_client, app, data, name, message):
    before = set(imports_folder(app).glob("*")) if imports_folder(app).exists() else set()
    response = upload(manager_client, data, name)
    assert response.status_code == 400
    html = response.text
    assert message in html
    assert "fr-upload-group--error" in html and 'class="fr-error-text"' in html
    assert 'aria-describedby="file-erreur"' in html
    assert "Traceback" not in html
    with app.app_context():
        assert count(ImportBatch) == 0
    assert set(imports_folder(app).glob("*")) == before


def test_a_missing_file_is_asked_for(manager_client):
    token = csrf_token(manager_client, "/imports/nouveau")
    response = manager_client.post(
        "/imports/nouveau", data={"csrf_token": token}, content_type="multipart/form-data"
    )
    assert response.status_code == 400
    assert "Choisissez le fichier CSV à importer." in response.text


@pytest.mark.parametrize("size", [3_000, 200_000], ids=["just-over", "far-over-413"])
def test_too_large_files_get_a_clear_message(manager_client, app, monkeypatch, size):
    monkeypatch.setitem(app.config, "IMPORT_MAX_BYTES", 2_000)
    before = set(imports_folder(app).glob("*")) if imports_folder(app).exists() else set()
    data = (HEADER + "Léa;Martin;0612345678;lea@ex.fr;;\r\n" * (size // 35)).encode()
    response = upload(manager_client, data)
    assert response.status_code in (400, 413)
    assert "dépasse la taille maximale autorisée (2 ko)" in response.text
    assert "<h1>Importer des prospects</h1>" in response.text
    with app.app_context():
        assert count(ImportBatch) == 0
    assert set(imports_folder(app).glob("*")) == before


def test_rejected_rows_are_listed_and_downloadable(manager_client, app):
    data = (
        HEADER
        + "Ana;Lee;0612345678;ana@ex.fr;;\r\n"
        + "\r\n"
        + "Sans;Contact;12 34;;Mairie;\r\n"
        + "Trop;Court\r\n"
        + ";;;;;\r\n"
        + 'Bob;"Ray; Jr";;pas-un-mail;;\r\n'
    ).encode("utf-8")
    response = import_file(manager_client, data)
    result = manager_client.get(response.headers["Location"]).text
    assert "Numéro de téléphone illisible et aucune adresse e-mail." in result
    assert "Nombre de colonnes incorrect : 2 au lieu de 6" in result
    assert "Adresse e-mail invalide et aucun téléphone valide." in result
    assert re.search(r'id="compteur-rejetes">3<', result)

    download = manager_client.get(f"/imports/{import_id_of(response)}/lignes-rejetees.csv")
    assert download.status_code == 200
    assert download.mimetype == "text/csv"
    assert "attachment" in download.headers["Content-Disposition"]
    body = download.data
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == [*HEADER.strip().split(";"), "ligne", "motif"]
    assert [r[6] for r in rows[1:]] == ["4", "5", "7"]  # line numbers in the original file
    assert rows[1][:6] == ["Sans", "Contact", "12 34", "", "Mairie", ""]
    assert rows[2][:2] == ["Trop", "Court"] and rows[2][2:6] == [""] * 4
    assert rows[3][1] == "Ray; Jr"
    with app.app_context():
        assert count(Prospect) == 1 and count(ImportRejection) == 3
        batch = db.session.scalar(sa.select(ImportBatch))
        assert batch.processed_rows == 4  # blank lines are not rows


def test_duplicates_within_the_file_and_against_the_database_are_merged(manager_client, app):
    with app.app_context():
        source = Source(name="Annuaire")
        db.session.add(source)
        db.session.flush()
        existing, _ = save(
            ProspectInput(first_name="Jean", phone="01 23 45 67 89", organisation=""), source, None
        )
        db.session.commit()
        existing_id = existing.id
    data = (
        HEADER
        + "Jeanne;Dupont;+33 1 23 45 67 89;jean@ex.fr;Mairie;\r\n"  # the existing person
        + "Léa;Martin;0612345678;;;\r\n"
        + ";;06.12.34.56.78;LEA@EX.FR;CAF;Rappeler\r\n"  # Léa again, completing her
        + "Autre;;;lea@ex.fr;;\r\n"  # Léa a third time, by e-mail
    ).encode("utf-8")
    response = import_file(manager_client, data)
    result = manager_client.get(response.headers["Location"]).text
    assert re.search(r'id="compteur-crees">1<', result)
    assert re.search(r'id="compteur-fusionnes">3<', result)
    with app.app_context():
        assert count(Prospect) == 2
        jean = db.session.get(Prospect, existing_id)
        assert (jean.first_name, jean.last_name, jean.email, jean.organisation) == (
            "Jean",  # kept
            "Dupont",  # filled
            "jean@ex.fr",
            "Mairie",
        )
        assert jean.source.name == "Annuaire" and jean.version == 2
        lea = db.session.scalar(sa.select(Prospect).where(Prospect.phone == "+33612345678"))
        assert (lea.first_name, lea.email, lea.organisation, lea.notes) == (
            "Léa",
            "lea@ex.fr",
            "CAF",
            "Rappeler",
        )
        merged = db.session.scalars(
            sa.select(Event).where(Event.kind == "prospect.merged").order_by(Event.id)
        ).all()
        assert [(e.prospect_id, e.data["line"]) for e in merged] == [
            (existing_id, 2),
            (lea.id, 4),
            (lea.id, 5),
        ]
        assert merged[0].data["filled"] == ["email", "last_name", "organisation"]


def test_a_bad_phone_with_a_good_email_is_imported_and_flagged(manager_client, app):
    data = (HEADER + "Ana;Lee;06 12;ana@ex.fr;;\r\n").encode()
    import_file(manager_client, data)
    with app.app_context():
        ana = db.session.scalar(sa.select(Prospect))
        assert (ana.phone, ana.phone_raw, ana.email) == (None, "06 12", "ana@ex.fr")
        assert ana.phone_invalid


def test_people_are_registered_in_the_chosen_lab(manager_client, app, lab):
    with app.app_context():
        source = Source(name="Annuaire")
        db.session.add(source)
        db.session.flush()
        known, _ = save(ProspectInput(email="deja@ex.fr"), source, None)
        db.session.flush()
        registration, _ = register(known, db.session.get(Lab, lab), None)
        registration.status = "contacted"
        db.session.commit()
    data = (HEADER + "Ana;Lee;0612345678;;;\r\nDéjà;Là;;deja@ex.fr;;\r\n").encode()
    response = import_file(manager_client, data, lab=str(lab))
    assert response.status_code == 302
    with app.app_context():
        rows = db.session.execute(
            sa.select(Prospect.email, Registration.status)
            .join(Registration, Registration.prospect_id == Prospect.id)
            .where(Registration.lab_id == lab)
            .order_by(Prospect.id)
        ).all()
        assert rows == [("deja@ex.fr", "contacted"), (None, "to_contact")]  # existing untouched
        new = db.session.scalar(sa.select(Registration).where(Registration.status == "to_contact"))
        events = db.session.scalars(
            sa.select(Event).where(Event.kind == "registration.created").order_by(Event.id)
        ).all()
        assert len(events) == 2  # the one of the setup, and the new one
        event = events[1]
        assert (event.registration_id, event.lab_id, event.to_status) == (new.id, lab, "to_contact")
        assert (event.prospect_id, event.from_status) == (new.prospect_id, None)
        assert new.call_bucket == 3 and new.next_call_at is not None  # like register() does


def test_permissions_follow_the_stated_basis_and_never_override_a_refusal(manager_client, app):
    with app.app_context():
        source = Source(name="Annuaire")
        db.session.add(source)
        db.session.flush()
        refused, _ = save(ProspectInput(email="non@ex.fr"), source, None)
        db.session.flush()
        set_permission(refused, "sms", True, "oral", None, from_person=True)
        set_permission(refused, "sms", False, "sms_keyword", None, from_person=True)
        save(ProspectInput(phone="0611111111"), source, None)
        bystander, _ = save(ProspectInput(email="b@ex.fr"), source, None)
        db.session.commit()
        bystander_id = bystander.id
    data = (
        HEADER
        + "Ana;Lee;0612345678;ana@ex.fr;;\r\n"
        + "Non;;0698765432;non@ex.fr;;\r\n"
        + "A;;0611111111;b@ex.fr;;\r\n"  # merged by phone; the e-mail is someone else's
    ).encode()
    import_file(manager_client, data, channels=["sms", "email"], basis="consent")
    with app.app_context():
        ana = db.session.scalar(sa.select(Prospect).where(Prospect.email == "ana@ex.fr"))
        assert (ana.allow_sms, ana.allow_email, ana.allow_phone) == (True, True, False)
        consents = db.session.scalars(sa.select(Consent).where(Consent.prospect_id == ana.id))
        assert sorted((c.channel, c.method, c.from_person) for c in consents) == [
            ("email", "import", False),
            ("sms", "import", False),
        ]
        non = db.session.scalar(sa.select(Prospect).where(Prospect.email == "non@ex.fr"))
        assert non.allow_sms is False  # the person's refusal stands
        assert non.allow_email is True  # never decided: the import's basis applies
        bystander = db.session.get(Prospect, bystander_id)
        assert not bystander.allow_sms and not bystander.allow_email  # not in the file
        basis = db.session.scalar(sa.select(Consent.basis).where(Consent.method == "import"))
        assert basis.startswith("Consentement recueilli par la source")


def test_mapping_errors_are_explained_and_nothing_is_imported(manager_client, app):
    data = (HEADER + "Ana;Lee;0612345678;ana@ex.fr;;\r\n").encode()
    response = import_file(manager_client, data, col_2="", col_3="", channels=["sms"])
    assert response.status_code == 400
    html = response.text
    assert "Associez une colonne au téléphone ou à l&#39;adresse e-mail" in html
    assert "Indiquez la base légale" in html
    response = import_file(manager_client, data, col_0="phone", source="nouvelle", new_source="")
    assert "toutes associées à « Téléphone »" in response.text.replace("&#34;", '"')
    assert "Saisissez le nom de la nouvelle source." in response.text
    with app.app_context():
        assert count(Prospect) == 0
        assert {b.status for b in db.session.scalars(sa.select(ImportBatch))} == {"uploaded"}


def test_an_upload_can_be_abandoned(manager_client, app):
    response = upload(manager_client, (HEADER + "A;B;0612345678;;;\r\n").encode())
    import_id = import_id_of(response)
    path = imports_folder(app) / f"{import_id}.csv"
    assert path.exists()
    token = csrf_token(manager_client, f"/imports/{import_id}/correspondance")
    gone = manager_client.post(f"/imports/{import_id}/abandon", data={"csrf_token": token})
    assert gone.status_code == 302 and not path.exists()
    with app.app_context():
        assert count(ImportBatch) == 0


def test_cli_imports_with_guesses_or_a_mapping(app, tmp_path, lab):
    path = tmp_path / "liste.csv"
    content = "First name,Name,Phone,Email\r\nAnn,Lee,06 12 34 56 78,ann@ex.fr\r\nBob,,12,\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + content.encode("utf-8"))  # UTF-8 with BOM, commas
    runner = app.test_cli_runner()
    result = runner.invoke(args=["crm", "import-prospects", str(path), "--source", "Forum"])
    assert result.exit_code == 0, result.output
    assert "Créés : 1, fusionnés : 0, rejetés : 1" in result.output
    assert "ligne 3 : Numéro de téléphone illisible" in result.output
    mapping = '{"Phone": "phone", "First name": "ignorer"}'
    options = ["--source", "forum", "--lab", str(lab), "--mapping", mapping]
    result = runner.invoke(args=["crm", "import-prospects", str(path), *options])
    assert result.exit_code == 0, result.output
    assert "Créés : 0, fusionnés : 1, rejetés : 1" in result.output
    with app.app_context():
        assert count(Source) == 1  # "forum" is the existing "Forum"
        ann = db.session.scalar(sa.select(Prospect))
        assert (ann.first_name, ann.source.name) == ("Ann", "Forum")
        assert count(Registration) == 1
    assert path.exists()  # the original file is never touched


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", [], "image PNG"),
        (b"Nom;Ville\r\nLee;Lyon\r\n", [], "Associez une colonne au téléphone"),
        (b"Nom;Tel\r\nLee;0612345678\r\n", ["--mapping", "{"], "pas un JSON valide"),
        (b"Nom;Tel\r\nLee;0612345678\r\n", ["--mapping", '{"Mobile": "phone"}'], "inconnue"),
        (b"Nom;Tel\r\nLee;0612345678\r\n", ["--lab", "999"], "Open lab introuvable"),
    ],
    ids=["png", "no-contact-column", "bad-json", "unknown-column", "unknown-lab"],
)
def test_cli_refuses_bad_input_clearly(app, tmp_path, content, args, message):
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    result = app.test_cli_runner().invoke(
        args=["crm", "import-prospects", str(path), "--source", "X", *args]
    )
    assert result.exit_code != 0
    assert message in result.output
    with app.app_context():
        assert count(ImportBatch) == 0 and count(Source) == 0


def test_cli_reports_a_missing_file(app, tmp_path):
    result = app.test_cli_runner().invoke(
        args=["crm", "import-prospects", str(tmp_path / "absent.csv"), "--source", "X"]
    )
    assert result.exit_code != 0 and "Fichier introuvable" in result.output


def run_worker(app, database_url: str, redis_url: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY="worker-test",
        CRM_INSTANCE_DIR=str(app.config["INSTANCE_DIR"]),
    )
    return subprocess.run(
        [str(BIN / "rq"), "worker", "--burst", "--url", redis_url, IMPORTS],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_large_imports_run_in_a_real_worker(
    manager_client, app, database_url, redis_url, monkeypatch
):
    monkeypatch.setitem(app.config, "IMPORT_INLINE_MAX_ROWS", 5)
    rows = "".join(f"P{i};N{i};06{i:08d};;;\r\n" for i in range(30))
    data = (HEADER + rows + "Bad;Row;12;;;\r\nP0;;06 00 00 00 00;p0@ex.fr;;\r\n").encode()
    response = import_file(manager_client, data)
    import_id = import_id_of(response)
    page = manager_client.get(f"/imports/{import_id}").text
    assert '<progress id="barre-progression"' in page and 'aria-valuenow="0"' in page
    assert '<meta http-equiv="refresh" content="5">' in page and "Rafraîchir" in page
    progress = manager_client.get(f"/imports/{import_id}/progress").json
    assert progress["status"] == "queued" and progress["total_rows"] == 32

    result = run_worker(app, database_url, redis_url)
    assert result.returncode == 0, result.stderr
    progress = manager_client.get(f"/imports/{import_id}/progress").json
    assert progress["status"] == "done", result.stderr
    assert (progress["created"], progress["merged"], progress["rejected"]) == (30, 1, 1)
    assert progress["processed_rows"] == 32 and progress["percent"] == 100
    page = manager_client.get(f"/imports/{import_id}").text
    assert "Import terminé" in page and "<progress" not in page

    # RQ delivers at least once: the same job again changes nothing.
    with app.app_context():
        from workers.queues import get_queue

        get_queue(IMPORTS).enqueue(
            "workers.jobs.run_import", import_id, job_id=f"import-{import_id}"
        )
    assert run_worker(app, database_url, redis_url).returncode == 0
    with app.app_context():
        assert count(Prospect) == 30 and count(ImportRejection) == 1
        assert db.session.scalar(sa.select(sa.func.count()).where(Event.kind == "import.done")) == 1


def test_an_interrupted_import_resumes_without_duplicates(manager_client, app, monkeypatch):
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    rows = [f"P{i};N{i};06{i:08d};;;\r\n" for i in range(5)]
    response = upload(manager_client, (HEADER + "".join(rows)).encode())
    import_id = import_id_of(response)
    path = imports_folder(app) / f"{import_id}.csv"
    good = path.read_bytes()
    # The file turns unreadable after the first batch (an unclosed quote swallowing the rest).
    path.write_bytes((HEADER + rows[0] + rows[1] + 'P2;"' + "x" * 200_000).encode())
    values = form_defaults(manager_client.get(f"/imports/{import_id}/correspondance").text)
    values.update(source="nouvelle", new_source="Salon")
    manager_client.post(f"/imports/{import_id}/correspondance", data=values)
    page = manager_client.get(f"/imports/{import_id}").text
    assert "L'import s'est interrompu" in page and "mal formé" in page
    assert "Reprendre l'import" in page
    with app.app_context():
        batch = db.session.get(ImportBatch, import_id)
        assert (batch.status, batch.processed_rows, batch.created_count) == ("failed", 2, 2)

    path.write_bytes(good)
    token = csrf_token(manager_client, f"/imports/{import_id}")
    manager_client.post(f"/imports/{import_id}/relancer", data={"csrf_token": token})
    with app.app_context():
        batch = db.session.get(ImportBatch, import_id)
        assert (batch.status, batch.processed_rows) == ("done", 5)
        assert (batch.created_count, batch.merged_count, batch.rejected_count) == (5, 0, 0)
        assert count(Prospect) == 5


def test_an_import_whose_job_was_lost_can_be_resumed(manager_client, app, monkeypatch):
    monkeypatch.setitem(app.config, "IMPORT_INLINE_MAX_ROWS", 1)
    rows = "".join(f"P{i};N{i};06{i:08d};;;\r\n" for i in range(3))
    import_id = import_id_of(import_file(manager_client, (HEADER + rows).encode()))
    page = manager_client.get(f"/imports/{import_id}").text
    assert "Import en cours" in page and "Reprendre" not in page  # the job is in Redis
    with app.app_context():
        from crm.redis_conn import get_redis

        get_redis().flushdb()  # Redis lost the job: the database still knows the import
    page = manager_client.get(f"/imports/{import_id}").text
    assert "Reprendre l'import" in page
    monkeypatch.setitem(app.config, "IMPORT_INLINE_MAX_ROWS", 2000)
    token = csrf_token(manager_client, f"/imports/{import_id}")
    manager_client.post(f"/imports/{import_id}/relancer", data={"csrf_token": token})
    assert manager_client.get(f"/imports/{import_id}/progress").json["created"] == 3


def test_formula_cells_are_neutralised_in_the_rejected_rows_and_restored_on_reimport(
    manager_client, app
):
    data = (HEADER + '=HYPERLINK("http://x");Piège;+33 6 12;;Mairie;\r\n').encode("utf-8")
    response = import_file(manager_client, data)
    download = manager_client.get(f"/imports/{import_id_of(response)}/lignes-rejetees.csv")
    rows = list(csv.reader(io.StringIO(download.data.decode("utf-8-sig")), delimiter=";"))
    assert rows[1][0] == '\'=HYPERLINK("http://x")' and rows[1][2] == "'+33 6 12"

    fixed = download.data.decode("utf-8-sig").replace("'+33 6 12", "'+33 6 12 34 56 78")
    again = import_file(manager_client, fixed.encode("utf-8"))
    manager_client.get(again.headers["Location"])
    with app.app_context():
        person = db.session.scalar(sa.select(Prospect))
        assert person.first_name == '=HYPERLINK("http://x")'
        assert person.phone == "+33612345678"
