from __future__ import annotations

import sqlalchemy as sa

from crm.extensions import db
from crm.models import Lab, Prospect, Registration, Source, User
from tests.conftest import login


def test_create_user_reads_the_password_from_stdin(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["crm", "create-user", "Chef@Exemple.fr", "--role", "manager", "--password-stdin"],
        input="un-mot-de-passe-solide\n",
    )
    assert result.exit_code == 0, result.output
    assert "Compte créé : chef@exemple.fr (Responsable)" in result.output
    assert login(client, "chef@exemple.fr", "un-mot-de-passe-solide").status_code == 302


def test_create_user_prompts_for_the_password_twice(app):
    result = app.test_cli_runner().invoke(
        args=["crm", "create-user", "a@exemple.fr"], input="mot-de-passe-long\nmot-de-passe-long\n"
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(sa.select(User))
        assert user.role == "caller" and user.password_hash != "mot-de-passe-long"


def test_create_user_refuses_bad_input_in_french(app):
    runner = app.test_cli_runner()
    short = runner.invoke(
        args=["crm", "create-user", "a@b.fr", "--password-stdin"], input="court\n"
    )
    assert short.exit_code != 0 and "au moins 12 caractères" in short.output
    runner.invoke(args=["crm", "create-user", "a@b.fr", "--password-stdin"], input="x" * 12 + "\n")
    again = runner.invoke(args=["crm", "create-user", "a@b.fr", "--password-stdin"], input="y" * 12)
    assert again.exit_code != 0 and "existe déjà" in again.output


def test_seed_demo_fills_an_empty_database_once_and_prints_passwords(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["crm", "seed-demo", "--if-empty"])
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.output.splitlines() if "@demo.open-lab.fr" in line]
    assert len(lines) == 3
    with app.app_context():
        count = lambda model: db.session.scalar(sa.select(sa.func.count()).select_from(model))  # noqa: E731
        assert (count(Lab), count(Source), count(Prospect), count(User)) == (1, 3, 60, 3)
        assert count(Registration) == 60
        roles = sorted(db.session.scalars(sa.select(User.role)))
        assert roles == ["caller", "caller", "manager"]
        lab = db.session.scalar(sa.select(Lab))
        assert lab.starts_at.tzinfo is not None and lab.status == "recruiting"
    manager_email, manager_password = lines[0]
    assert login(client, manager_email, manager_password).status_code == 302

    second = runner.invoke(args=["crm", "seed-demo", "--if-empty"])
    assert second.exit_code == 0 and second.output == ""
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Prospect)) == 60
