"""The dashboard's filters (a GET form, no CSRF): field validation only, messages in French."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask_wtf import FlaskForm
from wtforms import Field, SelectField
from wtforms.validators import ValidationError
from wtforms.widgets import DateInput

from crm.forms.labs import int_or_none, options
from crm.services.funnel import DIMENSION_LABELS, STEPS
from crm.services.funnel_sql import PEOPLE_LISTS
from crm.services.normalise import parse_id
from crm.timeutil import BAD_YEAR, DATE_FORMATS, FIRST_YEAR, LAST_YEAR

BAD_DATE = "Saisissez une date au format jj/mm/aaaa, par exemple 15/03/2025."


def parse_day(text: str) -> date:
    """'2025-03-15' or '15/03/2025' → the date; ValueError with a French message."""
    for fmt in DATE_FORMATS:
        try:
            day = datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
        if not FIRST_YEAR <= day.year <= LAST_YEAR:
            raise ValueError(BAD_YEAR)
        return day
    raise ValueError(BAD_DATE)


class DayField(Field):
    """An optional day, from a date picker (ISO) or typed in the French way."""

    widget = DateInput()

    def process_formdata(self, valuelist: list[Any]) -> None:
        self.data = None
        text = str(valuelist[0]).strip() if valuelist else ""
        if text:
            self.data = parse_day(text)

    def _value(self) -> str:
        if self.data:
            return self.data.isoformat()
        return str(self.raw_data[0]) if self.raw_data else ""


class DashboardFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET form: it changes nothing

    by = SelectField(
        "Vue",
        choices=options(DIMENSION_LABELS.items()),
        default="source",
        invalid_choice_message="Choisissez une vue : par source, par appelant·e ou par open lab.",
    )
    du = DayField("Du")
    au = DayField("Au")
    lab = SelectField(
        "Open lab",
        coerce=int_or_none,
        invalid_choice_message="Cet open lab n'existe pas : choisissez-en un dans la liste.",
        invalid_value_message="Cet open lab n'existe pas : choisissez-en un dans la liste.",
    )

    def validate_au(self, field: Field) -> None:
        if field.data and self.du.data and self.du.data > field.data:
            raise ValidationError("La date de fin doit être le jour de début ou après.")


def parse_key(raw: str | None) -> int | None:
    """The row of a figure: a number, or 'total' (or nothing) for the total row."""
    if raw in (None, "", "total"):
        return None
    key = parse_id(raw)
    if key is None:
        raise ValueError("Cette ligne du tableau n'existe pas.")
    return key


def check_step(raw: str | None) -> str:
    if raw not in STEPS and raw not in PEOPLE_LISTS:
        raise ValueError("Cette étape de l'entonnoir n'existe pas.")
    return raw
