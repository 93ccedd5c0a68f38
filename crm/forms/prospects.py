"""Forms of the prospect pages: field validation only, messages in French."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import Field, HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, ValidationError

from crm.forms.labs import Required, int_or_none, options
from crm.models.prospect import CHANNEL_LABELS, CONSENT_METHOD_LABELS, QUALIFICATION_LABELS
from crm.models.registration import REGISTRATION_STATUS_LABELS

# Methods a person at a desk can record; the others (signed link, SMS keyword, import) are
# written by the system itself.
MANUAL_METHODS = ("oral", "web_form", "manual")
NO_REASON = "Indiquez pourquoi cette personne n'est pas un utilisateur potentiel."


def _max(n: int) -> Length:
    return Length(max=n, message=f"{n} caractères au plus.")


class ProspectForm(FlaskForm):
    """Identity and contact details, for the creation and the edit of a prospect."""

    first_name = StringField(
        "Prénom", validators=[_max(120)], render_kw={"autocomplete": "given-name"}
    )
    last_name = StringField(
        "Nom", validators=[_max(120)], render_kw={"autocomplete": "family-name"}
    )
    phone = StringField(
        "Téléphone",
        validators=[_max(80)],
        render_kw={"type": "tel", "autocomplete": "tel", "inputmode": "tel"},
    )
    email = StringField(
        "Adresse e-mail",
        validators=[_max(254)],
        render_kw={"type": "email", "autocomplete": "email", "spellcheck": "false"},
    )
    organisation = StringField(
        "Structure", validators=[_max(200)], render_kw={"autocomplete": "organization"}
    )
    profile = StringField("Profil", validators=[_max(200)])
    notes = TextAreaField("Notes", render_kw={"rows": 3})
    version = HiddenField()  # the edit refuses a form opened before someone else's change
    source = SelectField(
        "Source",
        coerce=int_or_none,
        validators=[Required("Choisissez la source de ce contact.")],
        invalid_choice_message="Choisissez une source dans la liste.",
        invalid_value_message="Choisissez une source dans la liste.",
    )

    def validate_email(self, field: Field) -> None:
        if not (field.data or "").strip() and not (self.phone.data or "").strip():
            raise ValidationError("Saisissez au moins un téléphone ou une adresse e-mail.")


class ProspectCreateForm(ProspectForm):
    qualification = RadioField(
        "Utilisateur potentiel ?",
        choices=options(QUALIFICATION_LABELS.items()),
        default="unknown",
        invalid_choice_message="Choisissez une qualification.",
    )
    reason = TextAreaField(
        "Pourquoi n'est-ce pas un utilisateur potentiel ?", render_kw={"rows": 2}
    )

    def validate_reason(self, field: Field) -> None:
        if self.qualification.data == "no" and not (field.data or "").strip():
            raise ValidationError(NO_REASON)


class QualificationForm(FlaskForm):
    qualification = RadioField(
        "Utilisateur potentiel ?",
        choices=options(QUALIFICATION_LABELS.items()),
        invalid_choice_message="Choisissez une qualification.",
    )
    reason = TextAreaField(
        "Pourquoi n'est-ce pas un utilisateur potentiel ?",
        render_kw={"rows": 2},
    )


class PermissionForm(FlaskForm):
    channel = SelectField(
        "Canal",
        choices=options(CHANNEL_LABELS.items()),
        invalid_choice_message="Choisissez un canal dans la liste.",
    )
    granted = RadioField(
        "Permission",
        choices=options([("1", "Accordée"), ("0", "Retirée")]),
        validators=[Required("Indiquez si la permission est accordée ou retirée.")],
        invalid_choice_message="Indiquez si la permission est accordée ou retirée.",
    )
    method = SelectField(
        "Recueillie comment ?",
        choices=options((m, CONSENT_METHOD_LABELS[m]) for m in MANUAL_METHODS),
        invalid_choice_message="Choisissez une méthode dans la liste.",
    )
    from_person = RadioField(
        "Exprimée par la personne elle-même ?",
        choices=options([("1", "Oui"), ("0", "Non")]),
        default="1",
        invalid_choice_message="Indiquez si la personne l'a exprimée elle-même.",
    )
    basis = TextAreaField("Précision (fondement, circonstances)", render_kw={"rows": 2})


class RegisterForm(FlaskForm):
    lab = SelectField(
        "Open lab",
        coerce=int,
        invalid_choice_message="Choisissez un open lab dans la liste.",
        invalid_value_message="Choisissez un open lab dans la liste.",
    )
    reason = StringField("Précision (facultatif)", validators=[_max(500)])


class TransitionForm(FlaskForm):
    """Change one registration's status; `current` detects a page that went stale."""

    current = HiddenField()
    status = SelectField(
        "Nouveau statut",
        choices=options(REGISTRATION_STATUS_LABELS.items()),
        invalid_choice_message="Choisissez le nouveau statut dans la liste.",
    )
    reason = StringField("Pourquoi ? (facultatif)", validators=[_max(500)])
