"""Benchmark of the CSV import: 50,000 rows (10 % duplicates, 5 % bad rows) through the service.

    .venv/bin/python bench/import_bench.py                      # a temporary SQLite file
    .venv/bin/python bench/import_bench.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

On PostgreSQL the benchmark works in its own database (`crm_bench`, created and dropped on the
same server), never in the database of the URL. Printed: the time of a plain csv.reader pass
over the same file (the floor), the import's time, rows per second and counts, and the peak
traced memory of importing 10,000 and 50,000 rows: equal peaks mean memory stays flat.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crm import create_app  # noqa: E402
from crm.config import normalise_database_url, testing_config  # noqa: E402
from crm.extensions import db  # noqa: E402
from crm.models import Lab  # noqa: E402
from crm.services import import_upload, imports  # noqa: E402
from crm.services.import_mapping import guess_mapping  # noqa: E402
from crm.timeutil import utcnow  # noqa: E402

BENCH_DATABASE = "crm_bench"
HEADER = ["Prénom", "Nom", "Téléphone portable", "E-mail", "Structure", "Fonction", "Commentaire"]
FIRST = ["Léa", "Hugo", "Inès", "Chloé", "Noé", "Zoé", "Aïcha", "Élodie", "François", "Œdipe"]
LAST = ["Martin", "Lefèvre", "N'Diaye", "Dubois", "Garcia", "Müller", "Petit", "Roux"]
ORGS = ["Préfecture du Rhône", "France Services Guéret", "Mairie de Montreuil", "CAF, Réunion"]


def person(i: int) -> list[str]:
    rnd = random.Random(i)
    phone = f"06{i:08d}"
    return [
        rnd.choice(FIRST),
        rnd.choice(LAST),
        f"{phone[:2]} {phone[2:4]} {phone[4:6]} {phone[6:8]} {phone[8:]}",
        f"personne.{i}@exemple.fr",
        rnd.choice(ORGS),
        rnd.choice(["Agent d'accueil", "Conseiller numérique", ""]),
        rnd.choice(["", "Vu au salon; à rappeler", "Préfère les SMS"]),
    ]


def rows(n: int) -> Iterator[list[str]]:
    """Every 20th row is bad (5 %); one row in 10 repeats a person seen up to 2,000 rows
    earlier (10 %), with the phone written another way and the e-mail in capitals or missing."""
    for i in range(n):
        if i % 20 == 19:
            kind = (i // 20) % 3
            if kind == 0:
                yield ["Sans", "Contact", "01 23", "", "Mairie", "", ""]
            elif kind == 1:
                yield ["Colonnes", "manquantes"]
            else:
                yield ["Mauvais", "Mail", "", "pas-un-mail", "", "", ""]
        elif i % 10 == 4:
            back = 3 + 10 * ((i // 10) % 200)
            earlier = person(i - back if i >= back else i - 3)  # an index ending in 1: a person
            earlier[2] = "+33" + earlier[2].replace(" ", "")[1:]  # the same phone, written apart
            earlier[3] = earlier[3].upper() if i % 20 == 4 else ""
            earlier[6] = "Doublon"
            yield earlier
        else:
            yield person(i)


def write_csv(path: Path, n: int) -> None:
    with path.open("w", encoding="cp1252", newline="") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(HEADER)
        writer.writerows(rows(n))


@contextmanager
def bench_database(url: str | None, folder: Path) -> Iterator[str]:
    if not url or not url.startswith("postgres"):
        yield f"sqlite:///{folder / 'bench.sqlite3'}"
        return
    server = sa.make_url(normalise_database_url(url))
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{BENCH_DATABASE}"'))
    try:
        yield server.set(database=BENCH_DATABASE).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)'))
        admin.dispose()


def reset_schema() -> int:
    db.session.remove()
    db.drop_all()
    db.create_all()
    start = utcnow() + timedelta(days=30)
    lab = Lab(title="Lab de mesure", starts_at=start, ends_at=start + timedelta(hours=3))
    db.session.add(lab)
    db.session.commit()
    return lab.id


def import_once(path: Path, lab_id: int) -> Any:
    batch = import_upload.create_from_path(path)
    imports.configure(
        batch,
        guess_mapping(batch.header),
        source_name="Fichier de mesure",
        lab_id=lab_id,
        channels=["email"],
        basis="consent",
    )
    result = imports.run(batch.id)
    assert result is not None and result.status == "done", result and result.error
    return result


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = func()
    return time.perf_counter() - start, value


def traced_peak(func: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def csv_pass(path: Path) -> int:
    with path.open(encoding="cp1252", newline="") as f:
        return sum(1 for _ in csv.reader(f, delimiter=";"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL server (a crm_bench database is used)")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--small-rows", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        folder = Path(tmp)
        big, small, warm = folder / "big.csv", folder / "small.csv", folder / "warm.csv"
        write_csv(big, args.rows)
        write_csv(small, args.small_rows)
        write_csv(warm, 500)
        with bench_database(args.database_url, folder) as url:
            config = testing_config(url, "redis://127.0.0.1:6379/0", folder)  # Redis unused
            app = create_app(config)
            with app.app_context():
                run(app, url, big, small, warm, args)
                db.session.remove()
                db.engine.dispose()


def run(app: Any, url: str, big: Path, small: Path, warm: Path, args: Any) -> None:
    dialect = sa.make_url(url).get_backend_name()
    print(f"Base : {dialect} ; fichier : {args.rows} lignes, {big.stat().st_size / 1e6:.1f} Mo")
    reader_seconds, _ = timed(lambda: csv_pass(big))
    print(f"Référence, simple lecture csv.reader : {reader_seconds:.2f} s")

    lab_id = reset_schema()
    import_once(warm, lab_id)  # the first import compiles the statements: not measured
    lab_id = reset_schema()
    seconds, batch = timed(lambda: import_once(big, lab_id))
    print(f"Import de {args.rows} lignes : {seconds:.1f} s, {args.rows / seconds:.0f} lignes/s")
    print(
        f"  créés : {batch.created_count}, fusionnés : {batch.merged_count}, "
        f"rejetés : {batch.rejected_count}"
    )

    lab_id = reset_schema()
    peak_small = traced_peak(lambda: import_once(small, lab_id))
    lab_id = reset_schema()
    peak_big = traced_peak(lambda: import_once(big, lab_id))
    print(
        f"Pic de mémoire tracée (tracemalloc), {args.small_rows} lignes : {peak_small / 1e6:.1f} Mo"
    )
    print(f"Pic de mémoire tracée (tracemalloc), {args.rows} lignes : {peak_big / 1e6:.1f} Mo")
    print(f"Rapport des pics : {peak_big / peak_small:.2f} (1 = mémoire constante)")


if __name__ == "__main__":
    main()
