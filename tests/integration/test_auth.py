from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD, csrf_token, login

# Endpoints reachable without logging in. Anything else must send an anonymous visitor to login.
PUBLIC_ENDPOINTS = {
    "auth.login",
    "health.healthz",
    "assets.dsfr",
    "assets.favicon",
    "static",
    # Twilio has no session: the X-Twilio-Signature check guards these two.
    "webhooks.inbound_sms",
    "webhooks.delivery_status",
    # What every public service's footer links to, read by invited people too.
    "legal.accessibility",
    "legal.notice",
    "legal.personal_data",
    # The personal link pages: the signed token is the key.
    "links.show",
    "links.calendar",
    "links.confirm",
    "links.decline",
    "links.stop",
    "links.one_click_unsubscribe",
}


def test_every_page_requires_login_except_the_public_ones(app, client):
    seen_public = set()
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if getattr(view, "is_public", False) or rule.endpoint == "static":
            seen_public.add(rule.endpoint)
            continue
        url = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "1", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method)
            if method == "GET":
                assert response.status_code == 302, (rule.rule, method)
                assert "/connexion" in response.headers["Location"], rule.rule
            else:
                # With a valid CSRF token, only the login check can stop an anonymous POST.
                token = csrf_token(client)
                response = client.open(url, method=method, data={"csrf_token": token})
                assert response.status_code == 302, (rule.rule, method)
                assert "/connexion" in response.headers["Location"], rule.rule
    assert seen_public == PUBLIC_ENDPOINTS


def test_login_and_logout(client, make_user):
    user = make_user("manager")
    response = login(client, user.email)
    assert response.status_code == 302
    home = client.get("/")
    assert home.status_code == 200
    assert "Espace responsable" in home.get_data(as_text=True)
    token = csrf_token(client, "/")
    assert client.post("/deconnexion", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


@pytest.mark.parametrize(
    "email,password",
    [
        ("manager@test.fr", "mauvais-mot-de-passe"),
        ("inconnu@test.fr", PASSWORD),
        ("inconnu\x00@test.fr", PASSWORD),  # NUL is dropped, never a failed database read
    ],
)
def test_wrong_credentials_get_one_french_message_without_hint(client, make_user, email, password):
    make_user("manager")
    response = login(client, email, password)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Adresse e-mail ou mot de passe incorrect." in html
    assert client.get("/").status_code == 302


@pytest.mark.parametrize(
    "email,password,message",
    [
        ("a" * 250 + "@test.fr", PASSWORD, "L'adresse e-mail ne peut pas dépasser 254 caractères."),
        ("manager@test.fr", "x" * 201, "Le mot de passe ne peut pas dépasser 200 caractères."),
    ],
)
def test_overlong_credentials_get_a_french_message(client, make_user, email, password, message):
    make_user("manager")
    response = login(client, email, password)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True).replace("&#39;", "'")
    assert client.get("/").status_code == 302


def test_forms_say_what_the_asterisk_means(client):
    html = client.get("/connexion").get_data(as_text=True).replace("&#39;", "'")
    assert "Les champs marqués d'un astérisque (*) sont obligatoires." in html


def test_caller_gets_the_caller_home_and_no_manager_pages(caller_client):
    assert "Espace appelant" in caller_client.get("/").get_data(as_text=True)
    assert caller_client.get("/messages/").status_code == 403


def test_post_without_csrf_token_is_refused(client, make_user):
    user = make_user("manager")
    response = client.post("/connexion", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "jeton de sécurité" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


@pytest.mark.parametrize(
    "target",
    ["//evil.example/x", "/%09/evil.example", "/%0d%0a/x", "https://evil.example/", "/\\evil"],
)
def test_login_never_redirects_to_another_site(app, make_user, target):
    user = make_user("manager")
    client = app.test_client()
    token = csrf_token(client)
    response = client.post(
        f"/connexion?next={target}",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize(
    "url", ["/labs/99999999999999999999", "/prospects/?page=99999999999999999999"]
)
def test_numbers_too_large_for_the_database_get_a_404(manager_client, url):
    response = manager_client.get(url)
    assert response.status_code in (404, 200)
    assert "Erreur inattendue" not in response.get_data(as_text=True)


def test_unknown_url_gets_the_dsfr_404_page(client):
    response = client.get("/cette-page-n-existe-pas")
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "Page non trouvée" in html
    assert "fr-header" in html


def test_inactive_account_cannot_log_in(app, client, make_user):
    from crm.extensions import db
    from crm.models import User

    user = make_user("caller")
    with app.app_context():
        db.session.get(User, user.id).active = False
        db.session.commit()
    assert login(client, user.email).status_code == 400


def test_password_guessing_is_slowed_down(app, client, make_user):
    """5 failed attempts a minute per account (from any address) and per address (whatever
    the account); a successful login does not count. More cases in test_security.py."""
    user = make_user("manager")
    for _ in range(5):
        assert login(client, user.email, "mauvais-mot-de-passe").status_code == 400
    blocked = login(client, user.email, PASSWORD)
    assert blocked.status_code == 429
    assert "Trop de tentatives" in blocked.get_data(as_text=True)
    # The account is protected from another address too.
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert login(elsewhere, user.email).status_code == 429
    # Another account from another address is not locked out by these attempts.
    other = make_user("caller")
    assert login(elsewhere, other.email).status_code == 302


@pytest.mark.parametrize(
    "stored", ["", "7", "abc:1", "²:1", "{id}:²", "{id}:", ":1", "9" * 19 + ":1", "{id}:2"]
)
def test_a_malformed_or_stale_session_id_means_logged_out(app, make_user, stored):
    """The id Flask-Login keeps in the session is "<user id>:<session version>"; anything else
    (a cookie from before versioning, a password changed since) logs the person out."""
    from crm.views import load_user

    user = make_user("caller")
    with app.app_context():
        assert load_user(stored.format(id=user.id)) is None
        assert load_user(f"{user.id}:1").id == user.id
