"""A person's data: the confirmation of an erasure."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms.validators import DataRequired


class EraseForm(FlaskForm):
    confirm = BooleanField(
        "Je confirme l'effacement définitif des données personnelles de cette personne",
        validators=[DataRequired("Cochez la case pour confirmer l'effacement.")],
    )
