"""Forms of the CSV import: the upload, then the mapping of the columns. Field checks only."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import SelectChoice, SelectField, SelectMultipleField, StringField
from wtforms.validators import Length, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from crm.models.prospect import CHANNEL_LABELS
from crm.services.import_mapping import FIELD_LABELS, FIELDS, IGNORE, IGNORE_LABEL, mapping_problems
from crm.services.imports import LEGAL_BASES

NEW_SOURCE = "nouvelle"


def _choices(pairs: Iterable[tuple[str, str]]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


COLUMN_CHOICES = _choices([(IGNORE, IGNORE_LABEL), *((f, FIELD_LABELS[f]) for f in FIELDS)])


class UploadForm(FlaskForm):
    file = FileField(
        "Fichier CSV",
        validators=[FileRequired("Choisissez le fichier CSV à importer.")],
        render_kw={"accept": ".csv,.txt,text/csv,text/plain"},
    )


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class MappingForm(FlaskForm):
    """The columns' selects (col_0, col_1, ...) are added by `mapping_form`."""

    source = SelectField(
        "Source des personnes importées",
        invalid_choice_message="Choisissez une source dans la liste.",
    )
    new_source = StringField(
        "Nom de la nouvelle source",
        validators=[Length(max=120, message="120 caractères au plus.")],
    )
    lab = SelectField(
        "Inscrire les personnes dans un open lab (facultatif)",
        invalid_choice_message="Choisissez un open lab dans la liste.",
    )
    channels = MultiCheckboxField(
        "Canaux de contact autorisés",
        choices=_choices(CHANNEL_LABELS.items()),
        default=[],
        validate_choice=True,
        invalid_choice_message="Choisissez des canaux dans la liste.",
    )
    basis = SelectField(
        "Base légale de la prise de contact",
        choices=_choices([("", "Aucune : ne rien autoriser"), *LEGAL_BASES.items()]),
        default="",
        invalid_choice_message="Choisissez une base légale dans la liste.",
    )

    header: list[str] = []
    mapping_errors: list[str]

    def column_fields(self) -> list[Any]:
        return [self[f"col_{i}"] for i in range(len(self.header))]

    def mapping(self) -> list[str]:
        return [f.data or IGNORE for f in self.column_fields()]

    def source_id(self) -> int | None:
        return int(self.source.data) if self.source.data not in ("", NEW_SOURCE) else None

    def lab_id(self) -> int | None:
        return int(self.lab.data) if self.lab.data else None

    def validate_source(self, field: Any) -> None:
        if not field.data:
            raise ValidationError("Choisissez la source de ces personnes.")

    def validate_new_source(self, field: Any) -> None:
        if self.source.data == NEW_SOURCE and not (field.data or "").strip():
            raise ValidationError("Saisissez le nom de la nouvelle source.")

    def validate_basis(self, field: Any) -> None:
        if self.channels.data and not field.data:
            raise ValidationError(
                "Indiquez la base légale qui permet de contacter ces personnes sur les canaux "
                "cochés, ou décochez-les."
            )

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        self.mapping_errors = mapping_problems(self.header, self.mapping())
        return valid and not self.mapping_errors


def mapping_form(
    header: list[str],
    guesses: list[str],
    sources: list[tuple[int, str]],
    labs: list[tuple[int, str]],
) -> MappingForm:
    """A mapping form with one select per column, preset with the guesses."""

    class Form(MappingForm):
        pass

    Form.header = list(header)
    for index, name in enumerate(header):
        setattr(
            Form,
            f"col_{index}",
            SelectField(
                f"Colonne « {name} »",
                choices=COLUMN_CHOICES,
                default=guesses[index],
                invalid_choice_message="Choisissez un champ dans la liste.",
            ),
        )
    form = Form()
    form.mapping_errors = []
    form.source.choices = _choices(
        [
            ("", "Choisir une source"),
            *((str(i), name) for i, name in sources),
            (NEW_SOURCE, "Nouvelle source (saisir son nom ci-dessous)"),
        ]
    )
    if not form.is_submitted():
        form.source.data = "" if sources else NEW_SOURCE
    form.lab.choices = _choices([("", "Aucun : ne pas inscrire"), *((str(i), t) for i, t in labs)])
    return form
