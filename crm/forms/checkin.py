"""Check-in forms: field validation only (crm.services.checkin checks the rules again)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, Field, HiddenField, StringField
from wtforms.validators import Length, ValidationError

from crm.forms.labs import Required
from crm.services.checkin import BAD_EMAIL, BAD_PHONE
from crm.services.normalise import normalise_email, normalise_phone


def _max(n: int) -> Length:
    return Length(max=n, message=f"{n} caractères au plus.")


class TapForm(FlaskForm):
    """One person's "Présent·e" (or "Annuler") button: the CSRF token and the search to come
    back to."""

    q = HiddenField(validators=[_max(200)])


class WalkInForm(FlaskForm):
    first_name = StringField(
        "Prénom",
        validators=[Required("Saisissez le prénom."), _max(120)],
        render_kw={"autocomplete": "off", "autocapitalize": "words"},
    )
    last_name = StringField(
        "Nom",
        validators=[Required("Saisissez le nom."), _max(120)],
        render_kw={"autocomplete": "off", "autocapitalize": "words"},
    )
    organisation = StringField(
        "Structure", validators=[_max(200)], render_kw={"autocomplete": "off"}
    )
    phone = StringField(
        "Téléphone (facultatif)",
        validators=[_max(80)],
        render_kw={"type": "tel", "inputmode": "tel", "autocomplete": "off"},
    )
    email = StringField(
        "Adresse e-mail (facultatif)",
        validators=[_max(254)],
        render_kw={"type": "email", "autocomplete": "off", "spellcheck": "false"},
    )

    consent_sms = BooleanField("Par SMS")
    consent_email = BooleanField("Par e-mail")
    consent_phone = BooleanField("Par téléphone")

    def consents(self) -> tuple[str, ...]:
        """The channels the person agreed to, aloud at the desk."""
        chosen = (
            ("sms", self.consent_sms.data),
            ("email", self.consent_email.data),
            ("phone", self.consent_phone.data),
        )
        return tuple(channel for channel, agreed in chosen if agreed)

    # Both contacts are optional, but one typed at the desk must be readable (said with the
    # other errors at once; crm.services.checkin checks again).
    def validate_phone(self, field: Field) -> None:
        if (field.data or "").strip() and normalise_phone(field.data) is None:
            raise ValidationError(BAD_PHONE)

    def validate_email(self, field: Field) -> None:
        if (field.data or "").strip() and normalise_email(field.data) is None:
            raise ValidationError(BAD_EMAIL)
