"""Data subject requests, the shared part: the suppression list and finding a person.

An erased person's phone and e-mail are kept only as a keyed hash (HMAC-SHA256 with the app's
SECRET_KEY over the normalised value: E.164 phone, lower-case e-mail), so that an import or a
manual entry does not bring the person back, while the list itself reveals nobody. Changing
SECRET_KEY makes the list forget everyone: keep it stable.

The erasure itself is crm.services.erasure; the export crm.services.subject_export.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

import sqlalchemy as sa
from flask import current_app

from crm.extensions import db
from crm.models import Suppression

ERASED_NAME = "Personne effacée"
REIMPORT_REFUSED = "Personne effacée à sa demande : ne pas réimporter."
SAVE_REFUSED = (
    "Cette personne a demandé l'effacement de ses données : elle ne peut pas être "
    "enregistrée de nouveau."
)


def digest(value: str) -> str:
    """The keyed hash of an already normalised phone or e-mail (64 hex characters)."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def suppress(kind: str, value: str | None, reason: str) -> bool:
    """Add the value to the suppression list (the caller commits); False if already there."""
    if not value:
        return False
    key = digest(value)
    exists = db.session.scalar(
        sa.select(Suppression.id).where(Suppression.kind == kind, Suppression.digest == key)
    )
    if exists is not None:
        return False
    db.session.add(Suppression(kind=kind, digest=key, reason=reason[:200]))
    return True


def suppressed_values(phones: Iterable[str | None], emails: Iterable[str | None]) -> set[str]:
    """Which of these normalised phones and e-mails are on the list (one query)."""
    wanted = {("phone", digest(p)): p for p in phones if p}
    wanted |= {("email", digest(e)): e for e in emails if e}
    if not wanted:
        return set()
    rows = db.session.execute(
        sa.select(Suppression.kind, Suppression.digest).where(
            Suppression.digest.in_(sorted({key for _, key in wanted}))
        )
    )
    return {wanted[(kind, key)] for kind, key in rows if (kind, key) in wanted}


def is_suppressed(phone: str | None, email: str | None) -> bool:
    return bool(suppressed_values([phone], [email]))
