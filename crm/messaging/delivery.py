"""The life of a Message row around a provider call, shared by every backend.

`claim` moves the row from `pending` to `sending` with a conditional UPDATE and commits before
the provider is called: two workers delivering the same row cannot both get past it, and a row
that is already `sending`, `sent`, `failed`... is never handed to a provider again.

A caller that guards the send with its own conditional UPDATE (the follow-up engine) may
instead create the row already `sending` in the transaction of that guard and commit both at
once (`prepare_*(..., claimed=True)`, then `deliver_*(message, claimed=True)`): the guard,
which only one worker can pass, plays the part of `claim`, and the rule is the same: the row
is committed `sending` before the provider is called.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from crm.extensions import db
from crm.messaging.errors import AlreadySentError, SendError
from crm.models import Message
from crm.timeutil import utcnow


@dataclass(frozen=True)
class Accepted:
    """What the provider answered when it took the message."""

    provider_id: str | None = None
    provider_status: str | None = None
    segments: int | None = None


def claim(message: Message, backend: str) -> None:
    """Mark the row `sending` (committing the session) or raise AlreadySentError."""
    if message.status != "pending":
        raise AlreadySentError(message.id, message.status)
    if message.id is None:
        db.session.add(message)
        db.session.flush()
    result = db.session.execute(
        sa.update(Message)
        .where(Message.id == message.id, Message.status == "pending")
        .values(status="sending", backend=backend)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        current = db.session.get(Message, message.id)
        raise AlreadySentError(message.id, current.status if current else "supprimé")
    db.session.commit()


def check_claimed(message: Message) -> None:
    """A row created `sending` by its caller must have been committed so before the provider
    call (`claimed=True`); anything else is a programming error, never a send."""
    if message in db.session.new or db.session.is_modified(message):
        raise RuntimeError(f"message {message.id}: commit it as `sending` before delivering it")
    if message.status != "sending":
        raise AlreadySentError(message.id, message.status)


def record_success(message: Message, accepted: Accepted, *, commit: bool = True) -> Message:
    """Store the provider's answer; `commit=False` leaves the commit to the caller (who
    commits it together with its own record of the send)."""
    message.status = "sent"
    message.sent_at = utcnow()
    message.provider_id = accepted.provider_id
    message.provider_status = accepted.provider_status
    if accepted.segments:
        message.segments = accepted.segments
    if commit:
        db.session.commit()
    return message


def record_failure(message: Message, error: SendError) -> SendError:
    """Store the failure on the row and return the error, now carrying the row's id."""
    message.status = "unknown" if error.maybe_sent else "failed"
    message.error = str(error)
    message.error_code = error.code
    message.error_kind = error.kind
    db.session.commit()
    error.message_id = message.id
    return error
