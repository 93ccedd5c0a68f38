"""The demo data set that `make run` loads into an empty database."""

from __future__ import annotations

import random
import secrets
from datetime import datetime, time, timedelta

import sqlalchemy as sa

from crm.extensions import db
from crm.models import Lab, Prospect, Source, User
from crm.services.accounts import create_user
from crm.services.normalise import search_key
from crm.services.prospects import build_search_text
from crm.services.registrations import register
from crm.timeutil import from_local, utcnow

DEMO_USERS = (
    ("responsable@demo.open-lab.fr", "manager", "Camille Responsable"),
    ("appelant1@demo.open-lab.fr", "caller", "Sacha Appelant"),
    ("appelant2@demo.open-lab.fr", "caller", "Dominique Appelante"),
)
DEMO_SOURCES = (
    (
        "Annuaire de la préfecture",
        "Agents d'accueil des préfectures, liste fournie par le ministère.",
    ),
    ("Réseau France Services", "Conseillers France Services volontaires."),
    ("Open lab précédent", "Participants du dernier open lab."),
)
_FIRST = (
    "Camille",
    "Léa",
    "Hugo",
    "Inès",
    "Louis",
    "Chloé",
    "Nathan",
    "Manon",
    "Jules",
    "Zoé",
    "Amir",
    "Sarah",
    "Théo",
    "Élodie",
    "Karim",
    "Julie",
    "Lucas",
    "Aïcha",
    "Noé",
    "Emma",
)
_LAST = (
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefèvre",
    "Michel",
    "Garcia",
    "N'Diaye",
)
_ORGS = (
    "Préfecture du Rhône",
    "Préfecture de la Gironde",
    "France Services Lens",
    "France Services Guéret",
    "Mairie de Montreuil",
    "CAF de la Réunion",
)
_PROFILES = ("Agent d'accueil", "Conseiller numérique", "Chef de bureau", "Usager")


def database_is_empty() -> bool:
    return db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def seed_demo(prospect_count: int = 60, seed: int = 2026) -> dict[str, str]:
    """Create the demo data set; return the generated passwords by e-mail."""
    rng = random.Random(seed)
    passwords: dict[str, str] = {}
    for email, role, name in DEMO_USERS:
        passwords[email] = secrets.token_urlsafe(9)
        create_user(email, passwords[email], role, name)

    sources = [Source(name=n, description=d) for n, d in DEMO_SOURCES]
    db.session.add_all(sources)
    start_day = (utcnow() + timedelta(days=24)).date()
    lab = Lab(
        # No "n°" in the title: "°" is not GSM-7 and would make every SMS cost twice as much.
        title="Prendre rendez-vous en préfecture (lab 1)",
        problem=(
            "Les usagers peinent à obtenir un rendez-vous en préfecture pour leur titre de "
            "séjour. Nous construisons avec les agents d'accueil un service de prise de "
            "rendez-vous qui fonctionne pour eux et pour les usagers."
        ),
        venue="Ministère de l'Intérieur, 11 rue des Saussaies, 75008 Paris",
        starts_at=from_local(datetime.combine(start_day, time(9))),
        ends_at=from_local(datetime.combine(start_day, time(13))),
        capacity=40,
        target=30,
        status="recruiting",
    )
    db.session.add(lab)
    db.session.flush()

    for i in range(prospect_count):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        org = rng.choice(_ORGS)
        phone = f"+336{10000000 + i * 7919:08d}"
        email = f"{search_key(first)}.{search_key(last)}.{i}@exemple.fr".replace("'", "")
        prospect = Prospect(
            first_name=first,
            last_name=last,
            phone=phone,
            email=email,
            organisation=org,
            profile=rng.choice(_PROFILES),
            source=sources[i % len(sources)],
            qualification=rng.choice(("yes", "yes", "unknown")),
            allow_sms=True,
            allow_email=True,
            allow_phone=True,
            search_text=build_search_text(
                {
                    "first_name": first,
                    "last_name": last,
                    "organisation": org,
                    "email": email,
                    "phone": phone,
                }
            ),
        )
        db.session.add(prospect)
        db.session.flush()
        register(prospect, lab, actor=None, reason="Jeu de démonstration")
    db.session.commit()
    return passwords
