"""The managers' list of SMS replies and the development phone."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length


class HandledForm(FlaskForm):
    """Only the CSRF token: the message is in the URL."""


class SimulatedReplyForm(FlaskForm):
    body = TextAreaField(
        "Votre réponse",
        validators=[
            DataRequired("Écrivez un message."),
            Length(max=1600, message="Un SMS ne dépasse pas 1 600 caractères."),
        ],
    )
