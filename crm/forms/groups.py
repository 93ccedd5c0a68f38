"""Forms of the workshop groups page: field validation only (crm.services.workshop_groups
checks the rules again)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField
from wtforms.validators import InputRequired, NumberRange

from crm.services.grouping import DEFAULT_SIZE, MAX_SIZE, MIN_SIZE

SIZE_MESSAGE = f"La taille cible doit être comprise entre {MIN_SIZE} et {MAX_SIZE} personnes."


class GroupSizeForm(FlaskForm):
    group_size = IntegerField(
        "Taille cible des groupes",
        default=DEFAULT_SIZE,
        validators=[
            InputRequired(SIZE_MESSAGE),
            NumberRange(min=MIN_SIZE, max=MAX_SIZE, message=SIZE_MESSAGE),
        ],
        invalid_value_message=SIZE_MESSAGE,
        render_kw={"min": MIN_SIZE, "max": MAX_SIZE, "inputmode": "numeric"},
    )


class MakeGroupsForm(FlaskForm):
    # Only asked for (and checked by the service) when groups already exist.
    replace = BooleanField(
        "Je confirme : les groupes actuels et les déplacements faits à la main seront remplacés."
    )


class MoveForm(FlaskForm):
    # Integers, not a select with fixed choices: a wrong group number reaches the service,
    # whose French message names the groups that exist.
    registration_id = IntegerField(
        validators=[InputRequired("Personne manquante.")],
        invalid_value_message="Personne inconnue.",
    )
    group_no = IntegerField(
        "Groupe",
        validators=[InputRequired("Choisissez un groupe.")],
        invalid_value_message="Choisissez un numéro de groupe.",
    )
