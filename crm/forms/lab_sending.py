"""Forms of a lab's follow-up page: send window, pause/resume, review of a doubtful send."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TimeField
from wtforms.validators import AnyOf

from crm.forms.labs import Required, options
from crm.services.window import DAY_NAMES

DAYS = options((str(n), name.capitalize()) for n, name in enumerate(DAY_NAMES, start=1))


class SendWindowForm(FlaskForm):
    first_day = SelectField(
        "Premier jour", choices=DAYS, invalid_choice_message="Choisissez un jour dans la liste."
    )
    last_day = SelectField(
        "Dernier jour", choices=DAYS, invalid_choice_message="Choisissez un jour dans la liste."
    )
    start = TimeField(
        "Heure de début",
        validators=[Required("Saisissez l'heure de début.")],
        invalid_value_message="Saisissez une heure valide, par exemple 10:00.",
    )
    end = TimeField(
        "Heure de fin",
        validators=[Required("Saisissez l'heure de fin.")],
        invalid_value_message="Saisissez une heure valide, par exemple 20:00.",
    )


class ActionForm(FlaskForm):
    """Only the CSRF token: pause, resume and back to the default window."""


class ReviewForm(FlaskForm):
    # Not a HiddenField: the two submit buttons carry the value.
    outcome = StringField(
        validators=[AnyOf(("sent", "not_sent"), message="Choisissez « Envoyé » ou « Non envoyé ».")]
    )
