"""Lab form: field validation only (the rules are checked again in crm.services.labs)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    Field,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import Length, NumberRange, StopValidation, ValidationError

from crm.models.lab import LAB_STATUS_LABELS
from crm.services.labs import (
    CAPACITY_RANGE,
    MAX_LAB_SIZE,
    MAX_OFFER_HOURS,
    OFFER_HOURS_RANGE,
    TARGET_RANGE,
    overbooking_too_high,
)
from crm.timeutil import DATE_FORMATS


class Required:
    """Like DataRequired, but silent when the value could not even be read (one message)."""

    field_flags = {"required": True}

    def __init__(self, message: str) -> None:
        self.message = message

    def __call__(self, form: FlaskForm, field: Field) -> None:
        raw = [str(v).strip() for v in (field.raw_data or [])]
        if not any(raw):  # nothing typed: say so, rather than "invalid date"
            field.errors[:] = []
            raise StopValidation(self.message)
        if field.errors:
            raise StopValidation()
        if field.data is None or (isinstance(field.data, str) and not field.data.strip()):
            raise StopValidation(self.message)


def options(pairs: Iterable[tuple[Any, str]]) -> list[SelectChoice]:
    """Select options from (value, label) pairs."""
    return [SelectChoice(value, label) for value, label in pairs]


def int_or_none(value: Any) -> int | None:
    """Coerce for optional selects: the empty choice is None."""
    if value in (None, "", "None"):
        return None
    return int(value)


class LabForm(FlaskForm):
    title = StringField(
        "Titre",
        validators=[
            Required("Saisissez le titre de l'open lab."),
            Length(max=200, message="Le titre ne doit pas dépasser 200 caractères."),
        ],
    )
    problem = TextAreaField(
        "Problème sur lequel travaille l'open lab",
        render_kw={"rows": 5},
    )
    venue = TextAreaField("Lieu", render_kw={"rows": 2, "autocomplete": "street-address"})
    day = DateField(
        "Date",
        validators=[Required("Saisissez la date de l'open lab.")],
        format=DATE_FORMATS,
        invalid_value_message="Saisissez une date valide, par exemple 03/03/2026.",
    )
    start = TimeField(
        "Heure de début",
        validators=[Required("Saisissez l'heure de début.")],
        invalid_value_message="Saisissez une heure valide, par exemple 09:00.",
    )
    end = TimeField(
        "Heure de fin",
        validators=[Required("Saisissez l'heure de fin.")],
        invalid_value_message="Saisissez une heure valide, par exemple 13:00.",
    )
    capacity = IntegerField(
        "Capacité du lieu (places)",
        default=40,
        validators=[
            Required("Saisissez la capacité du lieu."),
            NumberRange(min=1, max=MAX_LAB_SIZE, message=CAPACITY_RANGE),
        ],
        invalid_value_message="Saisissez un nombre entier de places.",
    )
    target = IntegerField(
        "Objectif de participants",
        default=30,
        validators=[
            Required("Saisissez l'objectif de participants."),
            NumberRange(min=1, max=MAX_LAB_SIZE, message=TARGET_RANGE),
        ],
        invalid_value_message="Saisissez un nombre entier de participants.",
    )
    overbooking = IntegerField(
        "Marge de surréservation",
        default=0,
        validators=[
            Required("Saisissez la marge de surréservation (0 pour aucune)."),
            NumberRange(min=0, message="La marge de surréservation ne peut pas être négative."),
        ],
        invalid_value_message="Saisissez un nombre entier de personnes (0 pour aucune).",
    )
    offer_hours = IntegerField(
        "Durée de réservation d'une place proposée (heures)",
        default=24,
        validators=[
            Required("Saisissez la durée de réservation d'une place proposée."),
            NumberRange(min=1, max=MAX_OFFER_HOURS, message=OFFER_HOURS_RANGE),
        ],
        invalid_value_message="Saisissez un nombre entier d'heures.",
    )
    status = SelectField(
        "Statut",
        choices=options(LAB_STATUS_LABELS.items()),
        default="draft",
        invalid_choice_message="Choisissez un statut dans la liste.",
    )
    next_lab_id = SelectField(
        "Open lab suivant de la même série",
        coerce=int_or_none,
        choices=options([("", "Aucun")]),
        invalid_choice_message="Choisissez un open lab dans la liste.",
        invalid_value_message="Choisissez un open lab dans la liste.",
    )

    def validate_overbooking(self, field: Field) -> None:
        capacity = self.capacity.data
        if capacity and field.data is not None and field.data > capacity:
            raise ValidationError(overbooking_too_high(capacity))

    def validate_end(self, field: Field) -> None:
        if self.start.data and field.data and field.data <= self.start.data:
            raise ValidationError(
                "L'heure de fin doit être après l'heure de début : un open lab dure une "
                "demi-journée ou une journée, le même jour."
            )
