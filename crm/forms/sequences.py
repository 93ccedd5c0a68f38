"""Sequence step form: field validation only (the rules live in crm.services.sequence_editing)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, SelectField, StringField, TextAreaField, TimeField
from wtforms.validators import Optional

from crm.forms.labs import Required, options
from crm.services.sequence_preview import CHANNEL_LABELS


class StepForm(FlaskForm):
    channel = SelectField(
        "Canal",
        choices=options(CHANNEL_LABELS.items()),
        default="sms",
        invalid_choice_message="Choisissez un canal : SMS, e-mail ou appel.",
    )
    days = IntegerField(
        "Nombre de jours",  # the label of each kind is set by the view
        validators=[Required("Saisissez un nombre de jours (0 pour le jour même).")],
        invalid_value_message="Saisissez un nombre entier de jours, par exemple 2.",
        render_kw={"inputmode": "numeric"},
    )
    day_time = TimeField(
        "Heure d'envoi (facultatif)",
        validators=[Optional()],
        invalid_value_message="Saisissez une heure valide, par exemple 08:30.",
    )
    subject = StringField("Objet de l'e-mail (e-mail seulement)")
    body = TextAreaField("Texte du message", render_kw={"rows": 7, "spellcheck": "true"})
    version = HiddenField()
