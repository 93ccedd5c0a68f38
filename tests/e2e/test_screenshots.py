"""The user guide's screenshots (docs/guide.md), taken from the real pages in a real Chromium.

A small, realistic scene is built through the services: a series of three open labs (one
past, one today, one being recruited for), people from three sources, calls by two callers,
answers by SMS, a waiting list and check-ins. Each test walks one part of the guide (a day of
recruiting, preparing a lab, the lab day, the dashboards), checks what the pages say, and
saves a PNG of each page the guide shows.

Screenshots go to $CRM_SCREENSHOTS_DIR when it is set (`make screenshots` sets it to
docs/images), otherwise to pytest's tmp_path: the normal suite exercises the pages without
touching docs/.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from crm.extensions import db
from crm.models import Call, CallTask, Lab, Prospect, Registration, Source, User
from crm.services import calls, checkin, lab_day, prospects, registrations, replies, sequences
from crm.services.accounts import create_user
from crm.services.window import call_window, next_opening
from crm.timeutil import from_local, to_local, utcnow
from tests.conftest import PASSWORD
from tests.e2e.test_login import assert_dsfr_is_applied

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 667}
MAX_BYTES = 150_000  # keeps docs/images small; anything bigger is a page gone wrong
MANAGER = ("camille.lefort@demo.open-lab.fr", "manager", "Camille Lefort")
CALLERS = (
    ("sacha.martin@demo.open-lab.fr", "caller", "Sacha Martin"),
    ("dominique.roux@demo.open-lab.fr", "caller", "Dominique Roux"),
)
SOURCES = (
    ("Annuaire de la préfecture", "Agents d'accueil des préfectures, liste du ministère."),
    ("Réseau France Services", "Conseillers France Services volontaires."),
    ("Forum des services publics", "Personnes rencontrées au stand, formulaire papier."),
)
SERIES = "Prendre rendez-vous en préfecture"
PROBLEM = (
    "Les usagers peinent à obtenir un rendez-vous en préfecture pour leur titre de séjour. "
    "Nous construisons avec les agents d'accueil un service de prise de rendez-vous qui "
    "fonctionne pour eux et pour les usagers."
)
VENUE = "Préfecture du Rhône, 18 rue de Bonnel, 69003 Lyon"
# (first name, last name, organisation, profile)
PAST_LAB_PEOPLE = [
    ("Camille", "Bernard", "Préfecture du Rhône", "Agent d'accueil"),
    ("Hugo", "Petit", "Préfecture du Rhône", "Chef de bureau"),
    ("Inès", "Moreau", "Préfecture de la Gironde", "Agent d'accueil"),
    ("Louis", "Garcia", "Préfecture de la Gironde", "Agent d'accueil"),
    ("Chloé", "Lefèvre", "Préfecture du Nord", "Agent d'accueil"),
    ("Nathan", "Simon", "Préfecture du Nord", "Chef de bureau"),
    ("Manon", "Laurent", "Préfecture de l'Isère", "Agent d'accueil"),
    ("Jules", "Michel", "Préfecture de l'Isère", "Agent d'accueil"),
    ("Zoé", "Fontaine", "Préfecture du Rhône", "Agent d'accueil"),
    ("Théo", "Chevalier", "Préfecture de la Gironde", "Agent d'accueil"),
    ("Élodie", "Robin", "Préfecture du Nord", "Agent d'accueil"),
    ("Karim", "Haddad", "Préfecture de l'Isère", "Chef de bureau"),
    ("Julie", "Girard", "France Services Lens", "Conseiller numérique"),
    ("Lucas", "Bonnet", "France Services Guéret", "Conseiller numérique"),
    ("Aïcha", "Diallo", "France Services Lens", "Conseiller numérique"),
    ("Noé", "Mercier", "France Services Guéret", "Conseiller numérique"),
]
TODAY_LAB_NEW_PEOPLE = [
    ("Nadia", "Benali", "France Services Lens", "Conseiller numérique"),
    ("Marc", "Durand", "France Services Guéret", "Conseiller numérique"),
    ("Sarah", "Lambert", "France Services Vénissieux", "Conseiller numérique"),
    ("Yanis", "Belkacem", "France Services Vénissieux", "Agent d'accueil"),
    ("Léna", "Rousseau", "France Services Lens", "Agent d'accueil"),
    ("Paul", "Vincent", "Mairie de Villeurbanne", "Usager"),
    ("Fatou", "Ndiaye", "Association Cimade Lyon", "Bénévole"),
    ("Antoine", "Faure", "Mairie de Villeurbanne", "Usager"),
]
NEXT_LAB_PEOPLE = [
    ("Amina", "Benali", "France Services Vénissieux", "Conseiller numérique"),
    ("Julien", "Moreau", "Préfecture du Rhône", "Agent d'accueil"),
    ("Claire", "Dubois", "Préfecture de la Gironde", "Agent d'accueil"),
    ("Mehdi", "Kaci", "France Services Lens", "Conseiller numérique"),
    ("Émilie", "Roux", "Préfecture du Nord", "Chef de bureau"),
    ("Thomas", "Blanc", "Mairie de Villeurbanne", "Usager"),
    ("Sophie", "Muller", "Préfecture de l'Isère", "Agent d'accueil"),
    ("Kevin", "Nguyen", "France Services Guéret", "Conseiller numérique"),
    ("Laura", "Perrin", "Association Cimade Lyon", "Bénévole"),
    ("Hélène", "Morel", "Préfecture du Rhône", "Chef de bureau"),
    ("Rachid", "Amrani", "Mairie de Villeurbanne", "Usager"),
    ("Pauline", "Giraud", "Préfecture de la Gironde", "Agent d'accueil"),
    ("Bastien", "André", "France Services Vénissieux", "Agent d'accueil"),
    ("Océane", "Lemoine", "Préfecture du Nord", "Agent d'accueil"),
    ("Samuel", "Colin", "France Services Lens", "Conseiller numérique"),
    ("Anaïs", "Renaud", "Association Cimade Lyon", "Usager"),
    ("Victor", "Arnaud", "Préfecture de l'Isère", "Agent d'accueil"),
    ("Margaux", "Picard", "Mairie de Villeurbanne", "Usager"),
    ("Ibrahim", "Traoré", "France Services Guéret", "Conseiller numérique"),
    ("Lucie", "Barbier", "Préfecture du Rhône", "Agent d'accueil"),
]
QUESTION = "C'est à quelle heure exactement ? Je finis mon service à midi."
CSV = (
    "Prénom;Nom;Portable;Courriel;Structure\r\n"
    "Gabriel;Lopez;06 45 12 78 90;gabriel.lopez@exemple.fr;Préfecture de la Gironde\r\n"
    "Chantal;Marchand;07 81 22 33 44;;Mairie de Villeurbanne\r\n"
    "Rose;Caron;06 70 11 22 33;rose.caron@exemple.fr;France Services Lens\r\n"
    "Sans;Contact;12 34;;Mairie de Bron\r\n"
)


@dataclass
class Scene:
    """What the tests need to find their way: ids and e-mails, usable outside the app."""

    manager: str
    callers: list[str]
    past_lab: int
    today_lab: int
    next_lab: int
    prospect_ids: dict[str, int] = field(default_factory=dict)  # "Amina Benali" -> id
    registration_ids: dict[str, int] = field(default_factory=dict)  # in the next lab


# --- Screenshots -------------------------------------------------------------------------------


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = os.environ.get("CRM_SCREENSHOTS_DIR")
    target = Path(folder) if folder else tmp_path / "images"
    target.mkdir(parents=True, exist_ok=True)
    return target


def shoot(page, shots: Path, name: str, *, part=None, span=None, full_page: bool = False) -> Path:  # type: ignore[no-untyped-def]
    """Save the page, one element of it (`part`) or the band from one element to another
    (`span`), once every asset and font is loaded."""
    page.wait_for_load_state("networkidle")
    page.evaluate("document.fonts.ready.then(() => true)")
    path = shots / f"{name}.png"
    options = {"path": str(path), "animations": "disabled", "caret": "hide"}
    if part is not None:
        part.scroll_into_view_if_needed()
        part.screenshot(**options)
    elif span is not None:
        page.evaluate("window.scrollTo(0, 0)")
        top, bottom = (locator.bounding_box() for locator in span)
        assert top is not None and bottom is not None, name
        y = max(top["y"] - 16, 0)
        height = bottom["y"] + bottom["height"] + 16 - y
        clip = {"x": 0, "y": y, "width": page.viewport_size["width"], "height": height}
        page.screenshot(full_page=True, clip=clip, **options)
    else:
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(full_page=full_page, **options)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), name
    assert 5_000 < len(data) < MAX_BYTES, (name, len(data))
    return path


def log_in(page, base: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/connexion")
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bonjour")


def heading(page):  # type: ignore[no-untyped-def]
    return page.get_by_role("heading", level=1)


def _wait_for_charts(page) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function(
        "() => window.Chart && [...document.querySelectorAll('canvas[data-chart]')]"
        ".every((c) => window.Chart.getChart(c))"
    )


# --- The scene ---------------------------------------------------------------------------------


class _Builder:
    def __init__(self) -> None:
        self.phone = iter(range(61_020_304, 69_999_999, 40_429))
        self.sources: list[Source] = []
        self.people: dict[str, Prospect] = {}

    def person(self, who: tuple[str, str, str, str], source: Source) -> Prospect:
        first, last, organisation, profile = who
        email = f"{first}.{last}@exemple.fr".lower().replace(" ", "-")
        data = prospects.ProspectInput(
            first_name=first,
            last_name=last,
            phone=f"06{next(self.phone):08d}",
            email=email,
            organisation=organisation,
            profile=profile,
        )
        prospect, _ = prospects.save(data, source, None, "Liste fournie par la source")
        for channel in ("phone", "sms", "email"):
            prospects.set_permission(
                prospect, channel, True, "import", None, basis="Mission d'intérêt public"
            )
        self.people[f"{first} {last}"] = prospect
        return prospect


def _lab(title: str, day_offset: int, **fields) -> Lab:  # type: ignore[no-untyped-def]
    day = (to_local(utcnow()) + timedelta(days=day_offset)).date()
    lab = Lab(
        title=title,
        problem=PROBLEM,
        venue=VENUE,
        starts_at=from_local(datetime.combine(day, time(9, 30))),
        ends_at=from_local(datetime.combine(day, time(12, 30))),
        **fields,
    )
    db.session.add(lab)
    db.session.flush()
    return lab


def _lab_today() -> Lab:
    """Started an hour ago (on the hour, for tidy times), whatever the time of day."""
    now = to_local(utcnow())
    assert now is not None
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    lab = Lab(
        title=f"{SERIES} (lab 2)",
        problem=PROBLEM,
        venue=VENUE,
        starts_at=start.astimezone(utcnow().tzinfo),
        ends_at=(start + timedelta(hours=4)).astimezone(utcnow().tzinfo),
        capacity=12,
        target=10,
        status="closed",
    )
    db.session.add(lab)
    db.session.flush()
    return lab


def _call(registration: Registration, caller: User, outcome: str, **fields) -> None:  # type: ignore[no-untyped-def]
    calls.log_outcome(registration, caller, calls.Outcome(outcome=outcome, **fields))


def _sms(prospect: Prospect, body: str) -> None:
    """An SMS from the person, through the same services as Twilio's webhook."""
    replies.receive(
        {
            "MessageSid": f"SM{uuid.uuid4().hex}",
            "From": prospect.phone or "",
            "To": "+33700000000",
            "Body": body,
        }
    )


def _past_lab(b: _Builder, manager: User) -> Lab:
    """Lab 1, six weeks ago: 16 confirmed, 13 came, closed; two motivated, one active user."""
    lab = _lab(f"{SERIES} (lab 1)", -45, capacity=20, target=15, status="recruiting")
    for i, who in enumerate(PAST_LAB_PEOPLE):
        prospect = b.person(who, b.sources[0] if i < 12 else b.sources[1])
        registration, _ = registrations.register(prospect, lab, None)
        registrations.change_status(registration, "confirmed", None, "Confirmé par téléphone")
        if i not in (3, 8, 13):
            checkin.check_in(registration, manager)
    db.session.commit()
    lab_day.close(lab, manager)
    attendees = lab_day.attendees(lab)
    for registration in attendees[:2]:
        lab_day.flag_motivated(registration, manager, True)
    lab_day.mark_active_user(attendees[0], manager, True)
    db.session.commit()
    return lab


def _today_lab(b: _Builder, past: Lab, manager: User, callers: list[User]) -> Lab:
    """Lab 2, today: 6 returning people and 8 new ones; 12 places, so 2 on the waiting list;
    10 already checked in."""
    lab = _lab_today()
    past.next_lab_id = lab.id
    returning = [b.people[f"{f} {n}"] for f, n, *_ in PAST_LAB_PEOPLE[:3] + PAST_LAB_PEOPLE[4:7]]
    new = [
        b.person(who, b.sources[1] if i < 5 else b.sources[2])
        for i, who in enumerate(TODAY_LAB_NEW_PEOPLE)
    ]
    for i, prospect in enumerate(returning + new):
        registration, _ = registrations.register(prospect, lab, None)
        _call(registration, callers[i % 2], "confirmed", notes="Vient avec une collègue")
    confirmed = db.session.scalars(
        sa.select(Registration)
        .join(Prospect)
        .where(Registration.lab_id == lab.id, Registration.status == "confirmed")
        .order_by(Prospect.last_name, Prospect.first_name)
    ).all()
    for registration in confirmed:
        if registration.prospect.full_name not in ("Marc Durand", "Nadia Benali"):
            checkin.check_in(registration, manager)
    db.session.commit()
    return lab


def _next_lab(b: _Builder, callers: list[User]) -> tuple[Lab, dict[str, Registration]]:
    """Lab 3, in 24 days, being recruited for: calls, answers by SMS, a question to read."""
    lab = _lab(f"{SERIES} (lab 3)", 24, capacity=25, target=20, status="recruiting")
    regs: dict[str, Registration] = {}
    for i, who in enumerate(NEXT_LAB_PEOPLE):
        prospect = b.person(who, b.sources[i % 3])
        regs[prospect.full_name], _ = registrations.register(prospect, lab, None)
    db.session.commit()
    r = list(regs.values())
    sacha, dominique = callers
    _call(r[0], sacha, "no_answer")
    _call(r[0], sacha, "interested", notes="Veut en parler à sa cheffe", consent_sms=True)
    _sms(r[0].prospect, "Oui je serai là, merci !")
    _call(r[1], dominique, "voicemail", notes="Message laissé sur le répondeur")
    _sms(r[1].prospect, QUESTION)
    for registration in r[2:6]:
        _call(registration, sacha, "confirmed", consent_sms=True, consent_email=True)
    _call(r[6], dominique, "confirmed", notes="Très intéressée par le sujet")
    for registration in r[7:9]:
        _call(registration, dominique, "interested", consent_email=True)
    tomorrow = to_local(utcnow() + timedelta(days=1))
    assert tomorrow is not None
    when = next_opening(from_local(datetime.combine(tomorrow.date(), time(10))), call_window())
    _call(r[9], sacha, "callback", callback_at=when, notes="Rappeler demain matin")
    _call(r[10], sacha, "declined", notes="Pas disponible ce jour-là")
    _call(r[11], dominique, "not_potential_user", reason="Ne reçoit pas de public")
    _call(r[12], dominique, "no_answer")
    return lab, regs


@pytest.fixture
def scene(app) -> Scene:  # type: ignore[no-untyped-def]
    with app.app_context():
        manager = create_user(MANAGER[0], PASSWORD, MANAGER[1], MANAGER[2])
        callers = [create_user(email, PASSWORD, role, name) for email, role, name in CALLERS]
        b = _Builder()
        b.sources = [Source(name=name, description=about) for name, about in SOURCES]
        db.session.add_all(b.sources)
        db.session.flush()
        past = _past_lab(b, manager)
        today = _today_lab(b, past, manager, callers)
        upcoming, regs = _next_lab(b, callers)
        db.session.commit()
        return Scene(
            manager=manager.email,
            callers=[c.email for c in callers],
            past_lab=past.id,
            today_lab=today.id,
            next_lab=upcoming.id,
            prospect_ids={name: p.id for name, p in b.people.items()},
            registration_ids={name: r.id for name, r in regs.items()},
        )


# --- Une journée de recrutement ----------------------------------------------------------------


def test_a_day_of_recruiting(page, live_server, app, scene, shots):  # type: ignore[no-untyped-def]
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server, scene.callers[0])
    expect(heading(page)).to_have_text("Bonjour Sacha Martin")
    assert_dsfr_is_applied(page)

    page.get_by_role("link", name="Appels", exact=True).first.click()
    expect(heading(page)).to_have_text("Appels")
    day = page.locator("#ma-journee").locator("..")
    expect(day).to_contain_text("appels passés")
    # Sacha's calls in the scene: 7 for lab 2, then 2 + 4 + a callback + a refusal for lab 3.
    expect(day.locator(".crm-count")).to_have_text(["15", "14", "11", "0"])
    expect(page.get_by_role("heading", name=f"{SERIES} (lab 3)")).to_be_visible()
    expect(page.get_by_role("button", name="Prochain appel")).to_have_count(1)
    shoot(page, shots, "appels")

    # The question sent by SMS comes first: a "to read" task, before people not reached yet.
    page.get_by_role("button", name="Prochain appel").click()
    expect(heading(page)).to_have_text("Julien Moreau")
    expect(page.get_by_text("Réponse à lire", exact=True)).to_be_visible()
    expect(page.locator(".fr-callout__text", has_text=QUESTION)).to_be_visible()
    expect(page.get_by_role("button", name="Intéressé·e (envoyer les infos)")).to_be_visible()
    expect(page.get_by_role("button", name="Programmer le rappel")).to_be_visible()
    expect(page.get_by_text("une séance de travail en petits groupes")).to_be_visible()
    expect(page.get_by_label("Notes de l'appel")).to_be_focused()
    shoot(page, shots, "appel", span=(page.locator("header"), page.locator("#coordonnees")))
    shoot(page, shots, "appel-resultat", part=page.locator("section[aria-labelledby=resultat]"))

    first_url = page.url
    notes = "Rappelé : le lab finit à 12 h 30, il viendra."
    page.get_by_label("Notes de l'appel").fill(notes)
    page.get_by_role("button", name="Confirmé·e").click()
    expect(page.get_by_text("Appel enregistré : Confirmé·e.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/appels/inscriptions/\d+$"))
    assert page.url != first_url
    with app.app_context():
        julien = db.session.get(Registration, scene.registration_ids["Julien Moreau"])
        assert julien.status == "confirmed"
        call = db.session.scalar(sa.select(Call).order_by(Call.id.desc()).limit(1))
        assert (call.registration_id, call.outcome, call.notes) == (julien.id, "confirmed", notes)
        task = db.session.scalar(sa.select(CallTask).where(CallTask.kind == "to_read"))
        assert task.status == "done"

    # A person's page: where they come from, their registrations, the whole story.
    page.goto(f"{live_server}/prospects/{scene.prospect_ids['Amina Benali']}")
    expect(heading(page)).to_have_text("Amina Benali")
    expect(page.get_by_role("heading", name="Inscriptions aux open labs")).to_be_visible()
    history = page.locator("section[aria-labelledby=historique]")
    expect(history).to_contain_text("Oui je serai là, merci !")
    expect(history).to_contain_text("Sacha Martin")
    registered = page.locator("section[aria-labelledby=inscriptions]")
    expect(registered).to_contain_text("Confirmé")
    shoot(page, shots, "fiche-prospect", span=(heading(page), registered))
    events = history.locator("li")
    shoot(page, shots, "fiche-prospect-historique", span=(history, events.nth(5)))

    # The personal link in every message, as the person sees it on their phone.
    with app.app_context():
        link = sequences.personal_link(scene.registration_ids["Laura Perrin"])
    visitor = page.context.browser.new_context(
        locale="fr-FR", timezone_id="Europe/Paris", viewport=PHONE
    )
    phone = visitor.new_page()
    phone.goto(f"{live_server}{urlsplit(link).path}")
    expect(heading(phone)).to_have_text(f"{SERIES} (lab 3)")
    expect(phone.get_by_role("button", name="Je ne pourrai pas venir")).to_be_visible()
    expect(phone.get_by_role("button", name="Ne plus me contacter")).to_be_visible()
    shoot(phone, shots, "lien-personnel", full_page=True)
    visitor.close()


# --- Préparer un open lab ----------------------------------------------------------------------


def test_preparing_an_open_lab(page, live_server, app, scene, shots, tmp_path):  # type: ignore[no-untyped-def]
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server, scene.manager)
    expect(page.get_by_text("Espace responsable")).to_be_visible()

    page.get_by_role("link", name="Open labs", exact=True).first.click()
    expect(heading(page)).to_have_text("Open labs")
    expect(
        page.get_by_role("row", name=re.compile(r"\(lab 3\).*Recrutement en cours"))
    ).to_be_visible()
    page.get_by_role("link", name="Créer un open lab").click()
    expect(heading(page)).to_have_text("Créer un open lab")
    expect(page.get_by_label("Objectif de participants")).to_have_value("30")
    expect(page.get_by_label("Marge de surréservation")).to_have_value("0")
    expect(page.get_by_role("button", name="Créer l'open lab")).to_be_visible()
    shoot(page, shots, "open-lab-creer")

    page.get_by_role("link", name="Sources", exact=True).first.click()
    expect(heading(page)).to_have_text("Sources")
    expect(page.get_by_role("row", name=re.compile("Forum des services publics"))).to_be_visible()

    # Import: upload, check the columns, import into lab 3.
    path = tmp_path / "forum-services-publics.csv"
    path.write_bytes(CSV.encode("cp1252"))
    page.get_by_role("link", name="Importer", exact=True).first.click()
    expect(heading(page)).to_have_text("Importer des prospects")
    page.get_by_label("Fichier CSV").set_input_files(str(path))
    page.get_by_role("button", name="Envoyer le fichier").click()
    expect(heading(page)).to_have_text("Vérifier et associer les colonnes")
    expect(page.get_by_label("Champ pour la colonne « Portable »")).to_have_value("phone")
    page.get_by_label("Source des personnes importées").select_option(label=SOURCES[2][0])
    page.get_by_label("Inscrire les personnes dans un open lab (facultatif)").select_option(
        str(scene.next_lab)
    )
    for channel in ("SMS", "E-mail", "Téléphone"):
        page.locator("#canaux label", has_text=re.compile(f"^{channel}$")).click()
    page.get_by_label("Base légale de la prise de contact").select_option("public_task")
    start = page.get_by_role("button", name="Importer 4 lignes")
    shoot(page, shots, "import-colonnes", span=(heading(page), start))
    page.get_by_role("button", name="Importer 4 lignes").click()
    expect(page.get_by_role("heading", name="Import terminé")).to_be_visible()
    expect(page.locator("#compteur-crees")).to_have_text("3")
    expect(page.locator("#compteur-rejetes")).to_have_text("1")

    # The lab page: the pitch, the lab day's pages, the gauges.
    page.goto(f"{live_server}/labs/{scene.next_lab}")
    expect(heading(page)).to_have_text(f"{SERIES} (lab 3)")
    expect(page.get_by_role("link", name="Accueil du jour (émargement)")).to_be_visible()
    expect(page.get_by_text("6 confirmés sur un objectif de 20")).to_be_visible()
    expect(page.get_by_text("Encore 14 à trouver.")).to_be_visible()
    shoot(page, shots, "open-lab", span=(page.locator("header"), page.locator("#jour-j + ul")))
    recruiting = page.get_by_role("heading", name="Recrutement", exact=True)
    statuses = page.get_by_role("heading", name="Inscriptions par statut")
    shoot(page, shots, "open-lab-recrutement", span=(recruiting, statuses))

    # Automated follow-ups: the lists, pause and resume, the send window.
    page.get_by_role("link", name=re.compile("Voir les relances, suspendre les envois")).click()
    expect(heading(page)).to_have_text("Relances automatiques")
    expect(page.get_by_role("link", name=re.compile(r"^Programmés \(\d+\)$"))).to_be_visible()
    page.get_by_role("button", name="Suspendre les envois").click()
    expect(page.get_by_role("heading", name="Envois suspendus")).to_be_visible()
    expect(page.get_by_role("button", name="Reprendre les envois")).to_be_visible()
    expect(page.get_by_role("heading", name="Fenêtre d'envoi")).to_be_visible()
    expect(page.get_by_label("Premier jour")).to_have_value("1")
    shoot(page, shots, "relances")
    page.get_by_role("button", name="Reprendre les envois").click()
    expect(page.get_by_text("Envois repris.")).to_be_visible()
    with app.app_context():
        assert not db.session.get(Lab, scene.next_lab).sending_paused

    # The sequences and their texts: personalise the invitation, edit and preview a step.
    page.goto(f"{live_server}/labs/{scene.next_lab}/sequences/")
    expect(heading(page)).to_contain_text("Relances de l'open lab")
    expect(page.get_by_role("heading", name=re.compile("Rappels avant le lab"))).to_be_visible()
    page.get_by_role("button", name="Personnaliser pour cet open lab : Invitation").click()
    expect(page.get_by_text("Personnalisée pour cet open lab").first).to_be_visible()
    invitation = page.locator("#sequence-invitation")
    steps = page.locator("section[aria-labelledby=sequence-invitation] table")
    expect(steps.get_by_role("row")).to_have_count(5)
    shoot(page, shots, "sequences", span=(invitation, steps))
    page.get_by_role("link", name="Modifier l'étape 1 : Invitation").click()
    expect(heading(page)).to_have_text("Invitation — étape 1")
    expect(page.locator("#compteur-sms")).to_contain_text("GSM-7")
    expect(page.locator("#apercu-pour")).to_contain_text("Aperçu pour ")
    shoot(page, shots, "sequence-etape", span=(heading(page), page.locator("#compteur-sms")))


# --- Le jour du lab ----------------------------------------------------------------------------


def test_the_lab_day(page, live_server, app, scene, shots):  # type: ignore[no-untyped-def]
    page.set_viewport_size(PHONE)
    log_in(page, live_server, scene.callers[1])
    page.goto(f"{live_server}/labs/{scene.today_lab}/accueil/")
    expect(heading(page)).to_have_text("Accueil des participants")
    count = page.locator("#checkin-compte")
    expect(count).to_contain_text("Présent·es : 10 sur 12 attendu·es")
    page.get_by_label("Rechercher une personne").press_sequentially("duran", delay=40)
    people = page.locator("#checkin-liste > li")
    expect(people).to_have_count(1)
    page.get_by_role("button", name="Présent·e : Marc Durand").click()
    expect(count).to_contain_text("Présent·es : 11 sur 12 attendu·es")
    expect(page.locator("#checkin-annonce")).to_contain_text(
        re.compile(r"Marc Durand est enregistré·e présent·e à \d\d:\d\d\.")
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shoot(page, shots, "accueil-telephone")

    # The manager at a desk: workshop groups, the waiting list, closing, the next lab.
    page.context.clear_cookies()
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server, scene.manager)
    page.goto(f"{live_server}/labs/{scene.today_lab}/groupes/")
    expect(heading(page)).to_have_text("Groupes d'atelier")
    expect(page.get_by_text("11 personnes présentes")).to_be_visible()
    page.get_by_role("button", name="Former les groupes").click()
    expect(page.get_by_text("Groupes formés.")).to_be_visible()
    expect(page.get_by_role("heading", name="2 groupes")).to_be_visible()
    expect(page.get_by_role("heading", name="Groupe 1", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Groupe 2", exact=True)).to_be_visible()
    groups = page.get_by_role("heading", name="2 groupes")
    shoot(page, shots, "groupes", span=(groups, page.locator("#groupe-2 table")))

    page.goto(f"{live_server}/labs/{scene.today_lab}")
    waiting = page.locator("table", has=page.locator("caption", has_text="liste d'attente"))
    expect(waiting.get_by_role("row")).to_have_count(3)
    expect(waiting.get_by_role("row").nth(1)).to_contain_text("Fatou Ndiaye")
    expect(waiting.get_by_role("row").nth(2)).to_contain_text("Antoine Faure")
    expect(waiting).to_contain_text("0 sur 3")
    shoot(page, shots, "liste-attente", span=(page.locator("#liste-attente"), waiting))

    page.get_by_role("link", name="Après le lab").click()
    expect(heading(page)).to_have_text("Après le lab")
    expect(page.get_by_text("Présents : 11")).to_be_visible()
    page.get_by_role("button", name="Clore l'open lab").click()
    expect(
        page.get_by_text("Open lab clos : 11 présent(s) remercié(s), 1 absent(s) noté(s).")
    ).to_be_visible()
    expect(page.get_by_text("Absents : 1")).to_be_visible()
    expect(page.get_by_label("Open lab suivant")).to_be_visible()
    page.get_by_role("button", name="Marquer motivé : Marc Durand").click()
    expect(page.get_by_role("button", name="Retirer « motivé » pour Marc Durand")).to_be_visible()
    present = page.locator("table", has=page.locator("caption", has_text="Personnes présentes"))
    shoot(page, shots, "apres-le-lab", span=(heading(page), present.get_by_role("row").nth(3)))
    page.get_by_label("Open lab suivant").select_option(str(scene.next_lab))
    page.get_by_role("button", name="Choisir cet open lab").click()
    expect(page.get_by_text(f"« {SERIES} (lab 3) » est l'open lab suivant.")).to_be_visible()
    with app.app_context():
        lab = db.session.get(Lab, scene.today_lab)
        assert lab.status == "done" and lab.next_lab_id == scene.next_lab

    page.get_by_role("link", name="Voir la série de labs").click()
    expect(heading(page)).to_have_text("Série de labs")
    expect(page.get_by_role("row", name=re.compile(r"\(lab 1\)"))).to_be_visible()
    shoot(page, shots, "serie")


# --- Lire les tableaux de bord -----------------------------------------------------------------


def test_reading_the_dashboards(page, live_server, app, scene, shots):  # type: ignore[no-untyped-def]
    page.emulate_media(reduced_motion="reduce")  # charts drawn at once, without animation
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server, scene.manager)
    page.get_by_role("link", name="Tableau de bord").first.click()
    expect(heading(page)).to_have_text("Tableau de bord")
    expect(
        page.get_by_role("heading", name="Entonnoir de recrutement — par source")
    ).to_be_visible()
    funnel = page.locator("table", has=page.locator("th", has_text="Invités")).first
    for source, _ in SOURCES:
        expect(funnel.get_by_role("row", name=re.compile(source))).to_be_visible()
    total = funnel.get_by_role("row", name=re.compile("^Total"))
    registered = len(PAST_LAB_PEOPLE) + len(TODAY_LAB_NEW_PEOPLE) + 6 + len(NEXT_LAB_PEOPLE)
    invited = f"{registered} invités — Total : voir les personnes"
    expect(total.get_by_role("link").first).to_have_text(invited)
    shoot(page, shots, "tableau-de-bord", span=(heading(page), total))
    charts = page.get_by_role("heading", name="Graphiques", exact=True)
    expect(charts).to_be_visible()
    _wait_for_charts(page)
    # Lab 1: 13 came; lab 2: 10 checked in before the scene's end. 6 came back to lab 2.
    label = page.locator('canvas[data-chart="funnel"]').get_attribute("aria-label") or ""
    assert "Présents 23" in label and "Revenus à un lab suivant 6" in label, label
    shoot(page, shots, "graphiques", span=(charts, page.locator('canvas[data-chart="funnel"]')))
    with page.expect_download() as download:
        page.get_by_role("link", name="Télécharger ce tableau (CSV)").first.click()
    content = Path(download.value.path()).read_bytes().decode("utf-8-sig")
    assert content.splitlines()[0].startswith("Source;Invités;Contactés")

    page.get_by_role("link", name="Par appelant·e").click()
    by_caller = "Entonnoir de recrutement — par appelant·e"
    expect(page.get_by_role("heading", name=by_caller)).to_be_visible()
    for email in scene.callers:
        expect(page.get_by_role("row", name=re.compile(re.escape(email))).first).to_be_visible()

    page.get_by_role("link", name="Par source").click()
    page.get_by_label("Open lab", exact=True).select_option(str(scene.next_lab))
    page.get_by_role("button", name="Afficher").click()
    forecast = page.locator("section[aria-labelledby=prevision]")
    expect(forecast.get_by_role("heading", name=f"Prévision — {SERIES} (lab 3)")).to_be_visible()
    missing = re.compile(r"^Il manque \d+ confirmations$")
    expect(forecast.get_by_role("heading", name=missing)).to_be_visible()
    by_source = forecast.get_by_role("row", name=re.compile("^Annuaire de la préfecture"))
    expect(by_source.first).to_be_visible()
    expect(forecast).to_contain_text("(par défaut)")
    _wait_for_charts(page)
    to_call = forecast.locator("table", has=page.locator("th", has_text="Inscrit le"))
    expect(to_call.get_by_role("link", name=re.compile("^Appeler"))).to_have_count(9)
    shoot(page, shots, "prevision", span=(forecast, to_call.get_by_role("row").nth(4)))

    # Every figure leads to its people, and every table has its CSV.
    page.get_by_role("link", name="confirmés — Total : voir les personnes").click()
    expect(heading(page)).to_have_text("Confirmés — Total")
    expect(page.get_by_text("6 inscriptions")).to_be_visible()
