"""Team accounts: creation, password check and password change.

Passwords are hashed with scrypt (werkzeug), at least MIN_PASSWORD_LENGTH characters. A
password change bumps `User.session_version`, which is part of the session's user id
(crm.views.session_user_id): every other session of the account is signed out."""

from __future__ import annotations

from functools import cache

import sqlalchemy as sa
from werkzeug.security import check_password_hash, generate_password_hash

from crm.extensions import db
from crm.models import User
from crm.models.user import ROLES

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 200
HASH_METHOD = "scrypt"


class AccountError(ValueError):
    """A request about an account that cannot be honoured; the message is for the user."""


def create_user(email: str, password: str, role: str, name: str = "") -> User:
    email = email.strip().lower()
    if role not in ROLES:
        raise AccountError(f"Rôle inconnu : {role}. Rôles possibles : {', '.join(ROLES)}.")
    if "@" not in email:
        raise AccountError("L'adresse e-mail n'est pas valide.")
    if error := password_error(password):
        raise AccountError(error)
    if db.session.scalar(sa.select(User.id).where(User.email == email)) is not None:
        raise AccountError(f"Un compte existe déjà pour {email}.")
    user = User(email=email, role=role, name=name.strip())
    user.password_hash = hash_password(password)
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
    if not user.check_password(password):
        return None
    if not user.password_hash.startswith(HASH_METHOD + ":"):
        # An older hash (pbkdf2...): upgrade it now that the password is known.
        user.password_hash = hash_password(password)
        db.session.commit()
    return user


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=HASH_METHOD)


def password_error(password: str) -> str | None:
    """Why this new password is refused (in French), or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Le mot de passe doit contenir au moins {MIN_PASSWORD_LENGTH} caractères."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Le mot de passe ne doit pas dépasser {MAX_PASSWORD_LENGTH} caractères."
    return None


def change_password(user: User, current: str, new: str) -> None:
    """Check the current password, store the new one and sign out every session of the
    account (the caller logs the current one in again). AccountError says what is wrong."""
    if not user.check_password(current):
        raise AccountError("Le mot de passe actuel est incorrect.")
    if error := password_error(new):
        raise AccountError(error)
    if new == current:
        raise AccountError("Le nouveau mot de passe doit être différent de l'actuel.")
    user.password_hash = hash_password(new)
    user.session_version = (user.session_version or 1) + 1
    db.session.commit()


@cache
def _dummy_hash() -> str:
    return generate_password_hash("mot-de-passe-factice", method=HASH_METHOD)
