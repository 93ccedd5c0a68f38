from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    Field,
    HiddenField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import AnyOf, Length, Optional, ValidationError

from crm.models.call import CALL_OUTCOMES
from crm.services.calls import CALLBACK_PAST
from crm.timeutil import DATE_FORMATS, FIRST_YEAR


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
        format=DATE_FORMATS,
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

    def validate_callback_date(self, field: Field) -> None:
        # Year 1 would overflow the time-zone conversion before the service could refuse it
        # as past; every other date is the service's to judge (crm.services.calls).
        if field.data is not None and field.data.year < FIRST_YEAR:
            raise ValidationError(CALLBACK_PAST)


class NextCallForm(FlaskForm):
    """Only the CSRF token: the lab is in the URL."""


class SkipForm(FlaskForm):
    task_id = HiddenField()
