"""Team accounts: creation and password check."""

from __future__ import annotations

from functools import cache

import sqlalchemy as sa
from werkzeug.security import check_password_hash, generate_password_hash

from crm.extensions import db
from crm.models import User
from crm.models.user import ROLES

MIN_PASSWORD_LENGTH = 10


class AccountError(ValueError):
    """A request about an account that cannot be honoured; the message is for the user."""


def create_user(email: str, password: str, role: str, name: str = "") -> User:
    email = email.strip().lower()
    if role not in ROLES:
        raise AccountError(f"Rôle inconnu : {role}. Rôles possibles : {', '.join(ROLES)}.")
    if "@" not in email:
        raise AccountError("L'adresse e-mail n'est pas valide.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"Le mot de passe doit contenir au moins {MIN_PASSWORD_LENGTH} caractères."
        )
    if db.session.scalar(sa.select(User.id).where(User.email == email)) is not None:
        raise AccountError(f"Un compte existe déjà pour {email}.")
    user = User(email=email, role=role, name=name.strip())
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, or None (without saying which part was wrong)."""
    user = db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))
    if user is None or not user.active:
        # Same work as a real check, so the answer time does not reveal unknown accounts.
        check_password_hash(_dummy_hash(), password)
        return None
    return user if user.check_password(password) else None


@cache
def _dummy_hash() -> str:
    return generate_password_hash("mot-de-passe-factice")
