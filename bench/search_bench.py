"""Prospect search at 100,000 prospects: the list view's page-1 query and count, timed.

    .venv/bin/python bench/search_bench.py                      # a temporary SQLite file
    .venv/bin/python bench/search_bench.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

With a PostgreSQL URL the benchmark creates its own database (crm_search_bench) through an
AUTOCOMMIT connection to the given one, works only there, and drops it at the end (--keep to
keep it). It never touches the tables of the database named in the URL.

Every case runs exactly what the prospect list runs: crm.services.prospect_records.prospect_page
(db.paginate for the page, then the count capped at COUNT_CAP), and, for comparison, the same
page with db.paginate's exact count. Figures are printed next to two references measured in
the same run: a primary-key lookup and a `SELECT count(*)` of the table.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crm import create_app
from crm.config import normalise_database_url, testing_config
from crm.extensions import db
from crm.models import Lab, Prospect, Registration, Source
from crm.services.normalise import fold
from crm.services.prospect_records import COUNT_CAP, ProspectFilters, prospect_page
from crm.services.prospects import build_search_text

BENCH_DB = "crm_search_bench"
PER_PAGE = 50


def words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST = words(
    "Camille Léa Hugo Inès Louis Chloé Nathan Manon Jules Zoé Amir Sarah Théo Élodie Karim "
    "Julie Lucas Aïcha Noé Emma Gabriel Raphaël Louise Jade Arthur Ambre Maël Alice Sacha "
    "Lina Adam Rose Mohamed Anna Yanis Mila Ethan Lou Paul Agathe Nina Éric Hélène Frédéric "
    "Cécile Jérôme Amélie Sébastien Anaïs Benoît Brigitte Mathéo Céline Dominique Fatoumata "
    "Youssef Océane Gaëlle Loïc Maëlys"
)
LAST = words(
    "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent "
    "Lefèvre Michel Garcia N'Diaye David Bertrand Roux Vincent Fournier Morel Girard André "
    "Mercier Dupont Lambert Bonnet François Martinez Legrand Garnier Faure Rousseau Blanc "
    "Guérin Muller Henry Roussel Nicolas Perrin Morin Mathieu Clément Gauthier Dumont Lopez "
    "Fontaine Chevalier Robin Masson Sanchez Gérard Nguyen Boyer Denis Lemaire Duval Joly "
    "Gautier Benoît Traoré Diallo"
)
CITIES = words(
    "Lyon Bordeaux Lens Guéret Montreuil Saint-Denis Marseille Lille Rennes Nantes Toulouse "
    "Metz Nîmes Besançon Caen Limoges Poitiers Amiens Reims Évry Créteil Cayenne "
    "Fort-de-France Ajaccio"
)
ORGS = (
    "Préfecture de {c}",
    "France Services {c}",
    "Mairie de {c}",
    "CAF de {c}",
    "CPAM de {c}",
    "France Travail {c}",
    "Centre social de {c}",
    "Maison de santé de {c}",
)
DOMAINS = ("exemple.fr", "orange.fr", "gmail.com", "laposte.net", "interieur.gouv.fr", "free.fr")
PROFILES = ("Agent d'accueil", "Conseiller numérique", "Chef de bureau", "Usager", "Bénévole")
STATUSES = (("to_contact", 55), ("contacted", 15), ("interested", 10), ("confirmed", 8))
STATUSES += (("declined", 7), ("waitlisted", 3), ("disqualified", 2))


def bench_database(url: str | None, workdir: Path) -> tuple[str, Callable[[], None]]:
    """The URL the benchmark works on, and how to clean it up."""
    if not url:
        return f"sqlite:///{workdir / 'bench.sqlite3'}", lambda: None
    url = normalise_database_url(url)
    parsed = sa.engine.make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        return url, lambda: None
    if parsed.database == BENCH_DB:
        raise SystemExit(f"Donnez l'URL d'une autre base : {BENCH_DB} est recréée par le banc.")
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {BENCH_DB}"))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)"))
        admin.dispose()

    return parsed.set(database=BENCH_DB).render_as_string(hide_password=False), drop


def unique_phones(rng: random.Random, n: int) -> list[str]:
    """Distinct valid French mobiles in E.164: 06 xx or 073-079 xx."""
    seen: set[str] = set()
    while len(seen) < n:
        if rng.random() < 0.7:
            seen.add(f"+336{rng.randrange(10**8):08d}")
        else:
            seen.add(f"+337{rng.randrange(3, 10)}{rng.randrange(10**7):07d}")
    phones = sorted(seen)
    rng.shuffle(phones)
    return phones


def prospect_rows(rng: random.Random, n: int, source_ids: list[int]) -> Iterator[dict[str, Any]]:
    phones = unique_phones(rng, n)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        org = rng.choice(ORGS).format(c=rng.choice(CITIES))
        has_phone = rng.random() < 0.85
        has_email = not has_phone or rng.random() < 0.8
        email = None
        if has_email:
            local = f"{fold(first)}.{fold(last)}".replace("'", "").replace(" ", "")
            email = f"{local}{i}@{rng.choice(DOMAINS)}"
        row = {
            "first_name": first,
            "last_name": last,
            "phone": phones[i] if has_phone else None,
            "phone_raw": None,
            "email": email,
            "organisation": org,
            "profile": rng.choice(PROFILES),
            "notes": "",
            "source_id": source_ids[i % len(source_ids)],
            "qualification": rng.choice(("yes", "yes", "unknown", "unknown", "no")),
            "disqualification_reason": "",
            "allow_sms": has_phone,
            "allow_email": has_email,
            "allow_phone": has_phone,
            "created_at": start + timedelta(minutes=5 * i),
            "updated_at": start + timedelta(minutes=5 * i),
            "version": 1,
        }
        row["search_text"] = build_search_text(row)
        yield row


def populate(n: int, seed: int) -> dict[str, Any]:
    """Insert the data set with core bulk inserts; return what the cases search for."""
    rng = random.Random(seed)
    sources = [Source(name=name) for name in ("Annuaire préfecture", "France Services", "Salon")]
    day = datetime(2026, 3, 3, 8, tzinfo=UTC)
    labs = [
        Lab(title="Lab A", starts_at=day, ends_at=day + timedelta(hours=4), status="recruiting"),
        Lab(
            title="Lab B",
            starts_at=day + timedelta(days=42),
            ends_at=day + timedelta(days=42, hours=4),
        ),
    ]
    db.session.add_all([*sources, *labs])
    db.session.commit()
    table = Prospect.__table__
    batch: list[dict[str, Any]] = []
    sample: dict[str, Any] = {}
    for i, row in enumerate(prospect_rows(rng, n, [s.id for s in sources])):
        batch.append(row)
        if i == n // 2 + 17 and row["phone"]:
            sample["phone"] = row["phone"]
        if len(batch) == 5000:
            db.session.execute(table.insert(), batch)
            batch = []
    if batch:
        db.session.execute(table.insert(), batch)
    db.session.commit()
    ids = db.session.scalars(sa.select(Prospect.id).order_by(Prospect.id)).all()
    statuses = [s for s, weight in STATUSES for _ in range(weight)]
    regs = []
    for lab, share in ((labs[0], 0.08), (labs[1], 0.05)):
        for pid in rng.sample(ids, int(len(ids) * share)):
            regs.append({"prospect_id": pid, "lab_id": lab.id, "status": rng.choice(statuses)})
    for start in range(0, len(regs), 5000):
        db.session.execute(Registration.__table__.insert(), regs[start : start + 5000])
    db.session.commit()
    sample.setdefault("phone", db.session.scalar(sa.select(Prospect.phone).limit(1)))
    sample |= {"lab_a": labs[0].id, "source": sources[1].id, "registrations": len(regs)}
    sample["email"] = db.session.scalar(
        sa.select(Prospect.email).where(Prospect.email.is_not(None)).offset(n // 3).limit(1)
    )
    return sample


def spoken(e164: str) -> str:
    """+33612345678 -> '+33 6 12 34 56 78' (how a caller might paste it)."""
    d = e164[3:]
    return "+33 " + d[0] + " " + " ".join(d[i : i + 2] for i in range(1, 9, 2))


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    fn()  # warm-up: caches, plans
    times, result = [], None
    for _ in range(repeat):
        db.session.remove()
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95, result


def page_of(filters: ProspectFilters, cap: int | None) -> Callable[[], tuple[int, bool]]:
    def run() -> tuple[int, bool]:
        page = prospect_page(filters, 1, PER_PAGE, count_cap=cap)
        for prospect in page.items:  # rendered by the view: name, phone, source
            _ = prospect.source.name
        return page.total, page.total_capped

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL: a dedicated base is created")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="crm-bench-"))
    url, drop = bench_database(args.database_url, workdir)
    app = create_app(testing_config(url, "redis://127.0.0.1:1/0", workdir))
    try:
        with app.app_context():
            run(args, url)
    finally:
        with app.app_context():
            db.engine.dispose()
        if not args.keep:
            drop()


def run(args: argparse.Namespace, url: str) -> None:
    dialect = db.engine.dialect.name
    print(f"Base : {dialect} ({sa.engine.make_url(url).render_as_string(hide_password=True)})")
    db.create_all()
    t0 = time.perf_counter()
    sample = populate(args.rows, args.seed)
    print(
        f"{args.rows:,} prospects et {sample['registrations']:,} inscriptions insérés "
        f"en {time.perf_counter() - t0:.1f} s".replace(",", " ")
    )
    if dialect == "postgresql":  # autovacuum would do it; the app never analyses SQLite
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE"))

    middle = db.session.scalar(sa.select(Prospect.id).offset(args.rows // 2).limit(1))
    references = {
        "référence : lecture par clé primaire": lambda: db.session.execute(
            sa.select(Prospect).where(Prospect.id == middle)
        ).one(),
        "référence : SELECT count(*) FROM prospects": lambda: db.session.scalar(
            sa.select(sa.func.count()).select_from(Prospect)
        ),
    }
    cases = {
        "nom « lefèvre »": ProspectFilters(q="lefèvre"),
        "nom et prénom « élodie lef »": ProspectFilters(q="élodie lef"),
        "téléphone partiel « 06 12 »": ProspectFilters(q="06 12"),
        f"téléphone complet « {spoken(sample['phone'])} »": ProspectFilters(
            q=spoken(sample["phone"])
        ),
        "e-mail complet": ProspectFilters(q=sample["email"].upper()),
        "e-mail partiel « @laposte »": ProspectFilters(q="@laposte"),
        "structure « mairie de nimes »": ProspectFilters(q="mairie de nimes"),
        "aucun résultat « zzzz »": ProspectFilters(q="zzzz"),
        "filtre source": ProspectFilters(source=sample["source"]),
        "filtre lab A + confirmé": ProspectFilters(lab=sample["lab_a"], status="confirmed"),
        "nom + filtre lab A": ProspectFilters(q="martin", lab=sample["lab_a"]),
        "sans filtre": ProspectFilters(),
    }
    width = max(len(name) for name in [*cases, *references]) + 2
    header = f"{'cas':<{width}}{'médiane':>9}{'p95':>9}   {'résultats':>12}"
    header += f"   {'compte exact (méd./p95)':>24}"
    print(f"\n{args.repeat} répétitions par cas, page 1 de {PER_PAGE} ; temps en ms\n")
    print(header)
    print("-" * len(header))
    for name, fn in references.items():
        median, p95, _ = timed(fn, args.repeat)
        print(f"{name:<{width}}{median:>9.1f}{p95:>9.1f}")
    worst = 0.0
    for name, filters in cases.items():
        median, p95, (total, capped) = timed(page_of(filters, COUNT_CAP), args.repeat)
        exact_median, exact_p95, _ = timed(page_of(filters, None), max(5, args.repeat // 4))
        found = f"> {COUNT_CAP:,}".replace(",", " ") if capped else f"{total:,}".replace(",", " ")
        print(
            f"{name:<{width}}{median:>9.1f}{p95:>9.1f}   {found:>12}"
            f"   {exact_median:>11.1f} / {exact_p95:<9.1f}"
        )
        worst = max(worst, p95)
    verdict = "OK" if worst < 100 else "AU-DESSUS"
    print(f"\nPire p95 de la liste : {worst:.1f} ms (objectif < 100 ms) : {verdict}")


if __name__ == "__main__":
    main()
