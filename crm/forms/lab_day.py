"""Forms of the after-lab page: close the lab, link the next lab, flag an attendee."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField
from wtforms.validators import AnyOf, DataRequired


class ActionForm(FlaskForm):
    """Only the CSRF token (closing the lab)."""


class NextLabForm(FlaskForm):
    next_lab = SelectField(
        "Open lab suivant",
        choices=[],
        # The first option ("Choisir un open lab") is an empty value: a choice, not a lab.
        validators=[DataRequired("Choisissez un open lab dans la liste.")],
        invalid_choice_message="Choisissez un open lab dans la liste.",
    )


class FlagForm(FlaskForm):
    # "1" sets the flag, "0" removes it; the button carries the value.
    value = HiddenField(validators=[AnyOf(["0", "1"], message="Valeur inattendue.")])
