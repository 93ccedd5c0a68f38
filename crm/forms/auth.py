from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

from crm.services.accounts import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

TOO_LONG_PASSWORD = f"Le mot de passe ne peut pas dépasser {MAX_PASSWORD_LENGTH} caractères."


class LoginForm(FlaskForm):
    email = EmailField(
        "Adresse e-mail",
        validators=[
            DataRequired("Saisissez votre adresse e-mail."),
            Length(max=254, message="L'adresse e-mail ne peut pas dépasser 254 caractères."),
        ],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        "Mot de passe",
        validators=[
            DataRequired("Saisissez votre mot de passe."),
            Length(max=MAX_PASSWORD_LENGTH, message=TOO_LONG_PASSWORD),
        ],
        render_kw={"autocomplete": "current-password"},
    )


class PasswordChangeForm(FlaskForm):
    current = PasswordField(
        "Mot de passe actuel",
        validators=[
            DataRequired("Saisissez votre mot de passe actuel."),
            Length(max=MAX_PASSWORD_LENGTH, message=TOO_LONG_PASSWORD),
        ],
        render_kw={"autocomplete": "current-password"},
    )
    new = PasswordField(
        "Nouveau mot de passe",
        description=f"Au moins {MIN_PASSWORD_LENGTH} caractères. Une phrase de plusieurs mots "
        "est facile à retenir et difficile à deviner.",
        validators=[
            DataRequired("Saisissez le nouveau mot de passe."),
            Length(
                min=MIN_PASSWORD_LENGTH,
                max=MAX_PASSWORD_LENGTH,
                message=f"Le mot de passe doit contenir de {MIN_PASSWORD_LENGTH} à "
                f"{MAX_PASSWORD_LENGTH} caractères.",
            ),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Confirmez le nouveau mot de passe",
        validators=[
            DataRequired("Saisissez une seconde fois le nouveau mot de passe."),
            EqualTo("new", "Les deux saisies du nouveau mot de passe sont différentes."),
        ],
        render_kw={"autocomplete": "new-password"},
    )
