from __future__ import annotations

from crm import create_app
from crm.config import testing_config as make_config


def test_healthz_reports_database_redis_workers_and_queues(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["database"] == "ok" and body["redis"] == "ok"
    assert body["workers"] == 0
    assert set(body["queues"]) == {"dispatch", "messages", "imports", "default"}


def test_healthz_is_503_when_redis_is_down(tmp_path, database_url, app):
    broken = create_app(make_config(database_url, "redis://127.0.0.1:1/0", tmp_path))
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["redis"].startswith("error")
    assert response.get_json()["database"] == "ok"


def test_database_down_gives_503_health_and_a_clear_page(tmp_path, redis_url):
    broken = create_app(
        make_config("postgresql+psycopg://nobody@127.0.0.1:1/none", redis_url, tmp_path)
    )
    client = broken.test_client()
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.get_json()["database"].startswith("error")

    token_page = client.get("/connexion").get_data(as_text=True)
    token = token_page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    response = client.post(
        "/connexion", data={"email": "a@b.fr", "password": "x" * 12, "csrf_token": token}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "Service momentanément indisponible" in html
    assert "Traceback" not in html and "OperationalError" not in html
