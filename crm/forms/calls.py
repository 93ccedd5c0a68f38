from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, HiddenField, StringField, TextAreaField, TimeField
from wtforms.validators import AnyOf, Length, Optional

from crm.models.call import CALL_OUTCOMES


class CallOutcomeForm(FlaskForm):
    """One submit button per outcome (name="outcome"); the rules are checked by the service."""

    # Not a HiddenField: hidden_tag() would render it empty next to the buttons' values.
    outcome = StringField(
        validators=[AnyOf(CALL_OUTCOMES, message="Choisissez le résultat de l'appel.")]
    )
    notes = TextAreaField(
        "Notes de l'appel",
        validators=[Length(max=5000, message="Les notes dépassent 5 000 caractères.")],
    )
    callback_date = DateField(
        "Date du rappel",
        validators=[Optional()],
        format="%Y-%m-%d",
        invalid_value_message="Date du rappel invalide : utilisez le format jj/mm/aaaa.",
    )
    callback_time = TimeField(
        "Heure du rappel",
        validators=[Optional()],
        invalid_value_message="Heure du rappel invalide : utilisez le format hh:mm.",
    )
    reason = StringField(
        "Pourquoi hors cible ?",
        validators=[Length(max=500, message="La raison dépasse 500 caractères.")],
    )
    consent_sms = BooleanField("La personne accepte de recevoir des SMS")
    consent_email = BooleanField("La personne accepte de recevoir des e-mails")
    prospect_version = HiddenField()
    registration_version = HiddenField()
    task_id = HiddenField()


class NextCallForm(FlaskForm):
    """Only the CSRF token: the lab is in the URL."""


class SkipForm(FlaskForm):
    task_id = HiddenField()
