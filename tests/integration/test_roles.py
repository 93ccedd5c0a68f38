"""Access control: every route of the app, with every role, against an explicit table.

A forbidden route answers 403 (a 302 to the login page for an anonymous visitor); an allowed
one never answers 403 or 500 (404 for an id that does not match, 400 for an empty form, a
redirect after an action: all fine). POST routes get a valid CSRF token and no data, so only
the access check can refuse them. A new route must be added to ACCESS before this passes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest

from crm.extensions import db
from crm.models import ImportBatch, InboundMessage, Lab, Prospect, Registration, Source
from crm.services import sequences
from crm.services.registrations import register, transition
from crm.timeutil import utcnow
from tests.conftest import PASSWORD, csrf_token, login

PUBLIC = frozenset({"anonymous", "caller", "manager", "admin"})
STAFF = frozenset({"caller", "manager", "admin"})  # calls, prospects, check-in, own dashboard
MANAGERS = frozenset({"manager", "admin"})  # labs, sequences, imports, exports, sending...
ADMINS = frozenset({"admin"})  # users (no user page yet: accounts are made with the CLI)
ROLES = ("anonymous", "caller", "manager", "admin")
# No session opens these: only Twilio's signature does. Unsigned, they answer 403 to anyone.
SIGNATURE_ONLY = {"webhooks.inbound_sms", "webhooks.delivery_status"}

# endpoint -> the roles allowed. Written out on purpose: no rule is derived from the code.
ACCESS: dict[str, frozenset[str]] = {
    # Public: login, health, assets, Twilio (signature-checked), personal links (token).
    "auth.login": PUBLIC,
    "health.healthz": PUBLIC,
    # The footer's legal pages (invited people read them from their personal link).
    "legal.accessibility": PUBLIC,
    "legal.notice": PUBLIC,
    "legal.personal_data": PUBLIC,
    "assets.dsfr": PUBLIC,
    "assets.favicon": PUBLIC,
    "static": PUBLIC,
    "webhooks.inbound_sms": PUBLIC,
    "webhooks.delivery_status": PUBLIC,
    "links.show": PUBLIC,
    "links.calendar": PUBLIC,
    "links.confirm": PUBLIC,
    "links.decline": PUBLIC,
    "links.stop": PUBLIC,
    "links.one_click_unsubscribe": PUBLIC,
    # Every signed-in member of the team.
    "auth.logout": STAFF,
    "auth.password": STAFF,
    "assets.chartjs": STAFF,
    "main.home": STAFF,
    "calls.workspace": STAFF,
    "calls.call_page": STAFF,
    "calls.log_call": STAFF,
    "calls.skip": STAFF,
    "calls.next_call": STAFF,
    "labs.index": STAFF,
    "labs.show": STAFF,
    "checkin.page": STAFF,
    "checkin.results": STAFF,
    "checkin.mark_present": STAFF,
    "checkin.undo": STAFF,
    "checkin.walk_in": STAFF,
    "prospects.index": STAFF,
    "prospects.show": STAFF,
    "prospects.create": STAFF,
    "prospects.edit": STAFF,
    "prospects.registration": STAFF,
    "prospects.registration_status": STAFF,
    "prospects.permission": STAFF,
    "prospects.qualification": STAFF,
    "replies.simulated_phone": STAFF,  # development only (outbox): the prospect's SMS thread
    "dashboard.index": STAFF,  # a caller sees their own figures (tested below)
    "dashboard.people": STAFF,  # a caller sees their own people (tested below)
    "dashboard.export": STAFF,  # the caller's own tables; the lab tables are managers' (below)
    # Managers and admins.
    "labs.create": MANAGERS,
    "labs.edit": MANAGERS,
    "labs.export": MANAGERS,
    "lab_day.show": MANAGERS,
    "lab_day.series": MANAGERS,
    "lab_day.active": MANAGERS,
    "lab_day.motivated": MANAGERS,
    "lab_day.close": MANAGERS,
    "lab_day.link_next": MANAGERS,
    "groups.index": MANAGERS,
    "groups.export": MANAGERS,
    "groups.make": MANAGERS,
    "groups.move": MANAGERS,
    "groups.size": MANAGERS,
    "lab_sending.index": MANAGERS,
    "lab_sending.review": MANAGERS,
    "lab_sending.window": MANAGERS,
    "lab_sending.default_window": MANAGERS,
    "lab_sending.pause": MANAGERS,
    "lab_sending.resume": MANAGERS,
    "sequences.index": MANAGERS,
    "sequences.new_step": MANAGERS,
    "sequences.personalise": MANAGERS,
    "sequences.step": MANAGERS,
    "sequences.remove_step": MANAGERS,
    "imports.new": MANAGERS,
    "imports.show": MANAGERS,
    "imports.mapping": MANAGERS,
    "imports.progress": MANAGERS,
    "imports.rejected_csv": MANAGERS,
    "imports.discard": MANAGERS,
    "imports.resume": MANAGERS,
    "outbox.index": MANAGERS,
    "replies.index": MANAGERS,
    "replies.handled": MANAGERS,
    "sources.index": MANAGERS,
    "sources.create": MANAGERS,
    "sources.edit": MANAGERS,
    "privacy.person": MANAGERS,
    "privacy.export_json": MANAGERS,
    "privacy.export_zip": MANAGERS,
    "privacy.erase": MANAGERS,
    "privacy.audit_log": MANAGERS,
    "privacy.retention_list": MANAGERS,
}
# Routes of the data-protection work still in progress elsewhere default to managers only.
BLUEPRINT_DEFAULTS = {"privacy": MANAGERS}


def allowed_roles(endpoint: str) -> frozenset[str]:
    if endpoint in ACCESS:
        return ACCESS[endpoint]
    blueprint = endpoint.partition(".")[0]
    if blueprint in BLUEPRINT_DEFAULTS:
        return BLUEPRINT_DEFAULTS[blueprint]
    raise AssertionError(f"{endpoint}: add it to ACCESS in tests/integration/test_roles.py")


@dataclass
class Seeded:
    lab_id: int
    other_lab_id: int
    prospect_id: int
    registration_id: int
    other_registration_id: int
    step_id: int
    import_id: int
    inbound_id: int
    source_id: int


def seed(app) -> Seeded:  # type: ignore[no-untyped-def]
    """One of each object a URL can name, so that pages render instead of answering 404."""
    with app.app_context():
        source = Source(name="Annuaire")
        starts = utcnow() - timedelta(hours=1)
        lab = Lab(title="Lab", starts_at=starts, ends_at=starts + timedelta(hours=4))
        other = Lab(
            title="Autre lab",
            starts_at=utcnow() + timedelta(days=20),
            ends_at=utcnow() + timedelta(days=20, hours=3),
            status="recruiting",
        )
        db.session.add_all([source, lab, other])
        db.session.flush()
        prospect = Prospect(
            source=source,
            first_name="Camille",
            last_name="Martin",
            phone="+33612345678",
            email="camille@example.fr",
            allow_phone=True,
        )
        db.session.add(prospect)
        db.session.flush()
        registration, _ = register(prospect, lab, None)
        transition(registration, "confirmed", None)
        other_registration, _ = register(prospect, other, None)
        step = sequences.default_sequence("invitation").steps[0]
        batch = ImportBatch(
            filename="liste.csv",
            stored_path="imports/absent.csv",
            encoding="utf-8",
            delimiter=";",
            source=source,
        )
        inbound = InboundMessage(
            message_sid="SM" + "0" * 32,
            from_number="+33612345678",
            from_e164="+33612345678",
            body="OUI",
            prospect_id=prospect.id,
        )
        db.session.add_all([batch, inbound])
        db.session.commit()
        return Seeded(
            lab_id=lab.id,
            other_lab_id=other.id,
            prospect_id=prospect.id,
            registration_id=registration.id,
            other_registration_id=other_registration.id,
            step_id=step.id,
            import_id=batch.id,
            inbound_id=inbound.id,
            source_id=source.id,
        )


def url_of(rule, ids: Seeded) -> str:  # type: ignore[no-untyped-def]
    values = {
        "lab_id": ids.lab_id,
        "prospect_id": ids.prospect_id,
        "registration_id": ids.registration_id,
        "step_id": ids.step_id,
        "import_id": ids.import_id,
        "inbound_id": ids.inbound_id,
        "source_id": ids.source_id,
        "followup_id": 1,
        "kind": "invitation",
        "table": "entonnoir",
        "token": "jeton-invalide",
        "filename": "dsfr.min.css" if rule.endpoint == "assets.dsfr" else "crm.css",
    }

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in values, f"{rule.rule}: no test value for <{name}>"
        return str(values[name])

    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", value, rule.rule)


def client_for(app, make_user, role: str):  # type: ignore[no-untyped-def]
    client = app.test_client()
    if role != "anonymous":
        user = make_user(role, f"{role}@roles.test")
        assert login(client, user.email, PASSWORD).status_code == 302
    return client


def check(role: str, endpoint: str, method: str, url: str, status: int, location: str) -> None:
    where = f"{role} {method} {url} ({endpoint}) -> {status}"
    if endpoint in SIGNATURE_ONLY:
        assert status == 403, where
    elif role in allowed_roles(endpoint):
        assert status not in (403, 500), where
        if role != "anonymous":
            assert "/connexion" not in location or endpoint == "auth.logout", where
    elif role == "anonymous":
        assert status == 302 and "/connexion" in location, where
    else:
        assert status == 403, where


@pytest.mark.parametrize("role", ROLES)
def test_every_route_with_every_role(app, make_user, role):
    ids = seed(app)
    client = client_for(app, make_user, role)
    token = csrf_token(client, "/connexion" if role == "anonymous" else "/labs/")
    seen = set()
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        seen.add(rule.endpoint)
        url = url_of(rule, ids)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if rule.endpoint == "auth.logout":
                continue  # checked last: it ends the session
            if method == "GET":
                response = client.get(url)
            else:
                response = client.open(url, method=method, data={"csrf_token": token})
            location = response.headers.get("Location", "")
            check(role, rule.endpoint, method, url, response.status_code, location)
            response.close()
    response = client.post("/deconnexion", data={"csrf_token": token})
    check(
        role,
        "auth.logout",
        "POST",
        "/deconnexion",
        response.status_code,
        response.headers.get("Location", ""),
    )
    assert set(ACCESS) - seen <= {e for e in ACCESS if e.startswith("privacy.")}, (
        "ACCESS names routes that no longer exist",
        set(ACCESS) - seen,
    )


def test_admins_may_do_everything_managers_may():
    assert all("admin" in roles for roles in ACCESS.values())


# --- Object access -----------------------------------------------------------------------


def test_a_caller_cannot_read_another_callers_people_list(app, make_user):
    ids = seed(app)
    other = make_user("caller", "autre@roles.test")
    client = client_for(app, make_user, "caller")
    own = client.get("/tableau-de-bord/personnes?by=caller&key=total&step=invited")
    assert own.status_code == 200
    forged = client.get(f"/tableau-de-bord/personnes?by=caller&key={other.id}&step=invited")
    assert forged.status_code == 403
    assert (
        client.get("/tableau-de-bord/personnes?by=source&key=total&step=invited").status_code == 403
    )
    # The lab tables of the dashboard export are managers' only, even with a real lab id.
    assert client.get(f"/tableau-de-bord/export/previsions.csv?lab={ids.lab_id}").status_code == 403


def test_a_caller_cannot_post_to_manager_actions_with_a_forged_id(app, make_user):
    ids = seed(app)
    client = client_for(app, make_user, "caller")
    token = csrf_token(client, "/labs/")
    forged = {
        f"/labs/{ids.lab_id}/groupes/deplacer": {"registration_id": ids.registration_id},
        f"/labs/{ids.lab_id}/apres/{ids.registration_id}/actif": {},
        f"/labs/{ids.other_lab_id}/relances/pause": {},
        f"/reponses/{ids.inbound_id}/traite": {},
        f"/imports/{ids.import_id}/abandon": {},
        f"/labs/{ids.lab_id}/sequences/invitation/personnaliser": {},
        f"/prospects/{ids.prospect_id}/effacement": {"confirm": "y"},
    }
    for url, data in forged.items():
        response = client.post(url, data={**data, "csrf_token": token})
        assert response.status_code in (403, 404), url
    with app.app_context():
        assert db.session.get(InboundMessage, ids.inbound_id).handled_by_id is None
        assert db.session.get(ImportBatch, ids.import_id).status == "uploaded"
        assert db.session.get(Prospect, ids.prospect_id).phone == "+33612345678"


def test_check_in_refuses_a_registration_of_another_lab(app, manager_client):
    """The check-in URL names a lab and a registration: one of another lab is not found."""
    ids = seed(app)
    token = csrf_token(manager_client, "/labs/")
    url = f"/labs/{ids.lab_id}/accueil/{ids.other_registration_id}/present"
    response = manager_client.post(url, data={"csrf_token": token})
    assert response.status_code == 404
    with app.app_context():
        registration = db.session.get(Registration, ids.other_registration_id)
        assert registration.status != "attended"
