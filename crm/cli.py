"""`flask crm ...` commands."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from crm.models.user import ROLES
from crm.services import demo
from crm.services.accounts import AccountError, create_user

crm_cli = AppGroup("crm", help="Commandes d'administration d'Open Lab CRM.")


@crm_cli.command("create-user")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default="caller", show_default=True)
@click.option("--name", default="", help="Nom affiché.")
@click.option("--password-stdin", is_flag=True, help="Lire le mot de passe sur l'entrée standard.")
def create_user_command(email: str, role: str, name: str, password_stdin: bool) -> None:
    """Créer un compte (le mot de passe est demandé, ou lu sur l'entrée standard)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Mot de passe", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(email, password, role, name)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Compte créé : {user.email} ({user.role_label}).")


@crm_cli.command("seed-demo")
@click.option(
    "--if-empty", is_flag=True, help="Ne rien faire si la base contient déjà des comptes."
)
def seed_demo_command(if_empty: bool) -> None:
    """Charger le jeu de démonstration (un open lab, trois sources, 60 prospects, trois comptes)."""
    if not demo.database_is_empty():
        if if_empty:
            return
        raise click.ClickException(
            "La base contient déjà des comptes : jeu de démonstration non chargé."
        )
    passwords = demo.seed_demo()
    click.echo("Jeu de démonstration chargé. Comptes (mots de passe affichés une seule fois) :")
    for email, password in passwords.items():
        click.echo(f"  {email}  {password}")


def register_cli(app: Flask) -> None:
    app.cli.add_command(crm_cli)
