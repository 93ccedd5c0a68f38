"""`flask crm ...` commands."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from crm.models.user import ROLES
from crm.services import demo
from crm.services.accounts import AccountError, create_user
from crm.services.normalise import parse_id

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


@crm_cli.command("import-prospects")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--source", "source_name", required=True, help="Source (créée si elle n'existe pas).")
@click.option("--lab", "lab_id", type=int, help="N° de l'open lab où inscrire les personnes.")
@click.option(
    "--mapping",
    "mapping_json",
    help='Objet JSON {"colonne": "champ"} (first_name, last_name, phone, email, organisation, '
    "profile, notes ou ignorer) ; sans lui, les colonnes sont reconnues d'après leur nom.",
)
def import_prospects_command(
    file: Path, source_name: str, lab_id: int | None, mapping_json: str | None
) -> None:
    """Importer des prospects depuis un fichier CSV (UTF-8 ou Windows-1252, « ; » ou « , »)."""
    from crm.services import import_results, import_upload, imports

    names = None
    if mapping_json is not None:
        try:
            names = json.loads(mapping_json)
        except json.JSONDecodeError as exc:
            raise click.ClickException(f"--mapping n'est pas un JSON valide : {exc.msg}.") from exc
        if not isinstance(names, dict):
            raise click.ClickException('--mapping doit être un objet JSON {"colonne": "champ"}.')
    try:
        batch = imports.import_file(file, source_name, lab_id, names)
    except (import_upload.ImportFileError, imports.ImportSetupError) as exc:
        raise click.ClickException(str(exc)) from exc
    if batch.status != "done":
        raise click.ClickException(batch.error or "L'import s'est interrompu.")
    click.echo(
        f"Créés : {batch.created_count}, fusionnés : {batch.merged_count}, "
        f"rejetés : {batch.rejected_count}"
    )
    for rejection in import_results.first_rejections(batch.id, 20):
        click.echo(f"  ligne {rejection.line_number} : {rejection.reason}")
    if batch.rejected_count > 20:
        click.echo(f"  … et {batch.rejected_count - 20} autres (voir l'import n° {batch.id}).")


class FrenchUsageError(click.UsageError):
    """A bad option, said in French (exit code 2, like click's own usage errors)."""

    def show(self, file: object = None) -> None:
        click.echo(f"Erreur : {self.format_message()}", err=True)
        click.echo("Aide : flask crm funnel --help", err=True)


def _funnel_day(value: str | None, option: str) -> date | None:
    from crm.forms.dashboard import parse_day

    if value is None:
        return None
    try:
        return parse_day(value)
    except ValueError as exc:
        raise FrenchUsageError(f"{option} : {exc} (ou AAAA-MM-JJ)") from exc


@crm_cli.command("funnel")
@click.option("--lab", "lab_ref", metavar="ID", help="N° de l'open lab (par défaut : tous).")
@click.option("--by", "by", default="source", show_default=True, help="source, caller ou lab.")
@click.option("--format", "fmt", default="json", show_default=True, help="json ou csv.")
@click.option("--from", "start", metavar="AAAA-MM-JJ", help="Inscriptions à partir de ce jour.")
@click.option("--to", "end", metavar="AAAA-MM-JJ", help="Inscriptions jusqu'à ce jour inclus.")
def funnel_command(
    lab_ref: str | None, by: str, fmt: str, start: str | None, end: str | None
) -> None:
    """Afficher l'entonnoir de recrutement (JSON, ou CSV « ; » avec BOM) sur la sortie standard."""
    from crm.extensions import db
    from crm.models import Lab
    from crm.services import exports, funnel, funnel_export

    if by not in funnel.DIMENSIONS:
        raise FrenchUsageError(f"--by : « {by} » inconnu ; choisissez source, caller ou lab.")
    if fmt not in ("json", "csv"):
        raise FrenchUsageError(f"--format : « {fmt} » inconnu ; choisissez json ou csv.")
    lab_id = None
    if lab_ref is not None:
        lab_id = parse_id(lab_ref)
        if lab_id is None:
            raise FrenchUsageError(f"--lab : « {lab_ref} » n'est pas un numéro d'open lab.")
        if db.session.get(Lab, lab_id) is None:
            raise FrenchUsageError(f"--lab : l'open lab n° {lab_ref} n'existe pas.")
    first, last = _funnel_day(start, "--from"), _funnel_day(end, "--to")
    if first and last and first > last:
        raise FrenchUsageError("--to doit être le même jour que --from ou après.")
    result = funnel.funnel(funnel.Scope(by, funnel.Period(first, last), lab_id=lab_id))
    if fmt == "json":
        click.echo(json.dumps(funnel_export.funnel_json(result), ensure_ascii=False, indent=2))
        return
    header = (*funnel_export.funnel_header(by), *funnel_export.FIGURES_COLUMNS)
    steps, figures = funnel_export.funnel_rows(result), funnel_export.figures_rows(result)
    rows = [(*row, *extra[1:]) for row, extra in zip(steps, figures, strict=True)]
    for chunk in exports.csv_chunks(header, rows):
        click.echo(chunk, nl=False)


@crm_cli.command("erase")
@click.option("--phone", help="Téléphone de la personne (tout format).")
@click.option("--email", help="Adresse e-mail de la personne.")
@click.option("--yes", is_flag=True, help="Ne pas demander de confirmation.")
def erase_command(phone: str | None, email: str | None, yes: bool) -> None:
    """Effacer les données personnelles d'une personne, à sa demande (RGPD, article 17)."""
    from crm.extensions import db
    from crm.services import erasure
    from crm.services.normalise import normalise_email, normalise_phone
    from crm.services.prospects import find_existing

    if bool(phone) == bool(email):
        raise click.UsageError("Indiquez soit --phone, soit --email.")
    e164 = normalise_phone(phone) if phone else None
    prospect = find_existing(e164, normalise_email(email) if email else None)
    if prospect is None:
        raise click.ClickException("Aucune personne avec ce téléphone ou cet e-mail.")
    if not yes:
        click.confirm(
            f"Effacer définitivement les données de {prospect.full_name} "
            f"(fiche n° {prospect.id}) ?",
            abort=True,
        )
    result = erasure.erase(prospect, None)  # audited as "ligne de commande"
    db.session.commit()
    counts = ", ".join(f"{k.replace('_', ' ')} : {v}" for k, v in result.counts.items())
    click.echo(f"Fiche n° {result.prospect_id} effacée ({counts}).")


@crm_cli.command("retention")
@click.option("--dry-run", is_flag=True, help="Lister sans rien anonymiser.")
def retention_command(dry_run: bool) -> None:
    """Anonymiser les personnes sans contact venu d'elles depuis RETENTION_DAYS jours."""
    from crm.services import retention

    ids = retention.run(dry_run=dry_run)
    verb = "seraient anonymisées" if dry_run else "anonymisées"
    click.echo(f"{len(ids)} personne(s) {verb} (durée : {retention.retention_days()} jours).")
    if ids:
        click.echo("Fiches n° " + ", ".join(str(i) for i in ids))


def register_cli(app: Flask) -> None:
    app.cli.add_command(crm_cli)
