"""Source form: field validation only (the unique name is checked in crm.services.labs)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import Length

from crm.forms.labs import Required


class SourceForm(FlaskForm):
    name = StringField(
        "Nom",
        validators=[
            Required("Saisissez le nom de la source."),
            Length(max=120, message="Le nom ne doit pas dépasser 120 caractères."),
        ],
    )
    description = TextAreaField("Description", render_kw={"rows": 3})
