"""Twilio delivery receipts (status callbacks): they arrive late, twice or out of order, so a
message's status only moves forward (sent < delivered; failed and delivered are final), and a
failure's error code has the same effects as at send time (crm.services.sending).

A receipt may even come before the send is recorded (the worker waits for a database that
went away): it is kept in `early_receipts` and applied by the dispatcher's next pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import sqlalchemy as sa

from crm.extensions import db
from crm.messaging.errors import error_for_code
from crm.models import EarlyReceipt, FollowUp, Message
from crm.services import sending
from crm.services.normalise import parse_id
from crm.timeutil import utcnow

RECEIPT_FIELDS = ("MessageSid", "SmsSid", "MessageStatus", "SmsStatus", "ErrorCode")
PROVIDER_ID_MAX = 64  # Message.provider_id and EarlyReceipt.provider_id
ERROR_CODE_MAX = 2**31 - 1  # Message.error_code: Twilio's codes have 5 digits
EARLY_RECEIPT_DAYS = 2  # a message not recorded after two days never will be

# Twilio's MessageStatus → our Message.status.
TWILIO_STATUSES = {
    "accepted": "sent",
    "scheduled": "sent",
    "queued": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}
RANK = {"pending": 0, "sending": 1, "unknown": 1, "sent": 2, "delivered": 3, "failed": 3}


def apply(params: Mapping[str, str]) -> str:
    """Apply one receipt; returns what happened ("updated", "ignored" or "kept for later")."""
    # NUL dropped and the length bounded like the columns (the form is signed, not checked).
    params = {key: value.replace("\x00", "") for key, value in params.items()}
    sid = (params.get("MessageSid") or params.get("SmsSid") or "").strip()
    if len(sid) > PROVIDER_ID_MAX:
        return "ignored"  # no message of ours has such an id
    twilio_status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
    target = TWILIO_STATUSES.get(twilio_status)
    message = db.session.scalar(sa.select(Message).where(Message.provider_id == sid))
    if message is None:
        if sid and target is not None:
            kept = {k: params[k] for k in RECEIPT_FIELDS if params.get(k)}  # no phone number
            db.session.add(EarlyReceipt(provider_id=sid, params=kept))
            db.session.commit()
        return "kept for later"
    if target is None or RANK[target] <= RANK[message.status]:
        return "ignored"  # a late or repeated receipt never moves the status backwards
    code = _code(params.get("ErrorCode"))
    values: dict[str, object] = {"status": target, "provider_status": twilio_status}
    error = error_for_code(code) if target == "failed" else None
    if error is not None:
        values.update(error=str(error), error_code=code, error_kind=error.kind)
    # Conditional on the status read above: of two receipts processed at once, one wins.
    moved = db.session.execute(
        sa.update(Message)
        .where(Message.id == message.id, Message.status == message.status)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        return "ignored"
    row = db.session.scalar(sa.select(FollowUp).where(FollowUp.message_id == message.id))
    if row is not None and row.status == "sent":
        if target == "delivered":
            row.status = "delivered"
        elif error is not None:
            sending.record_failure(row, error)  # same effects as at send time; commits
    db.session.commit()
    return "updated"


def apply_early() -> int:
    """Apply the receipts that came before their message was recorded (dispatcher's pass);
    returns how many were applied. Those older than EARLY_RECEIPT_DAYS are dropped."""
    known = list(
        db.session.scalars(
            sa.select(EarlyReceipt)
            .where(sa.exists().where(Message.provider_id == EarlyReceipt.provider_id))
            .order_by(EarlyReceipt.id)
            .limit(500)
        )
    )
    for receipt in known:
        db.session.delete(receipt)  # committed with the receipt's effect (kept if it rolls back)
        apply(dict(receipt.params))
    cutoff = utcnow() - timedelta(days=EARLY_RECEIPT_DAYS)
    db.session.execute(sa.delete(EarlyReceipt).where(EarlyReceipt.received_at < cutoff))
    db.session.commit()
    return len(known)


def _code(value: str | None) -> int | None:
    """Twilio's error code, or None when absent or not a plausible code."""
    code = parse_id(value)
    return code if code is not None and code <= ERROR_CODE_MAX else None
