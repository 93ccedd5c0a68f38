"""Send one SMS, whatever the backend: Twilio in production, the outbox in development.

The backend is `SMS_BACKEND` ("twilio" when the three TWILIO_* settings are set, else
"outbox"). Two ways to send:

- `send_sms(...)`: create the Message row and deliver it at once.
- `prepare_sms(...)` then `deliver_sms(message)`: the caller creates the row in its own
  transaction (e.g. together with its follow-up row), commits, and delivers it later.
- `prepare_sms(..., claimed=True)`, commit, then `deliver_sms(message, claimed=True,
  commit=False)`: the caller's own guard claims the row (crm.messaging.delivery) and it
  commits the provider's answer with its own record (one commit before the call, one after).

Delivery commits the session, marks the row `sending` before the provider call, and never
hands a row that is not `pending` to the provider (AlreadySentError). Failures are stored on
the row and raised as classified `SendError`s; nothing is retried or deduplicated here.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from crm.config import ConfigError
from crm.extensions import db
from crm.messaging import outbox, twilio_backend, webhooks
from crm.messaging.delivery import (
    Accepted,
    check_claimed,
    claim,
    record_failure,
    record_success,
)
from crm.messaging.encoding import sms_info
from crm.messaging.errors import SendError
from crm.messaging.senders import Sender, parse_sender
from crm.models import Message

SMS_BACKENDS = (outbox.NAME, twilio_backend.NAME)
MAX_VALIDITY_SECONDS = 36_000  # Twilio's limit for validity_period


def sms_backend_name() -> str:
    name = current_app.config.get("SMS_BACKEND") or outbox.NAME
    if name not in SMS_BACKENDS:
        raise ConfigError(f"SMS_BACKEND inconnu : « {name} » (attendu : twilio ou outbox).")
    return name


def current_sender() -> Sender:
    """The configured sender; the outbox without TWILIO_SENDER uses an alphanumeric name."""
    value = current_app.config.get("TWILIO_SENDER")
    if not value and sms_backend_name() == outbox.NAME:
        return Sender(outbox.DEFAULT_SENDER, "alphanumeric")
    try:
        return parse_sender(value or "")
    except ValueError as exc:
        raise ConfigError(f"TWILIO_SENDER : {exc}") from exc


def sender_is_two_way() -> bool:
    """Can people answer our SMS? False with an alphanumeric sender: they need the signed link."""
    return current_sender().two_way


def prepare_sms(
    to_e164: str, body: str, *, prospect_id: int | None = None, claimed: bool = False
) -> Message:
    """A pending Message row (`sending` when `claimed`), added and flushed (it has an id) but
    not committed."""
    info = sms_info(body)
    message = Message(
        channel="sms",
        backend=sms_backend_name(),
        sender=current_sender().value,
        to_address=to_e164,
        body=body,
        encoding=info.encoding,
        segments=info.segments,
        status="sending" if claimed else "pending",
        prospect_id=prospect_id,
    )
    db.session.add(message)
    db.session.flush()
    return message


def _validity(validity_seconds: int | None) -> int:
    value = validity_seconds or int(current_app.config.get("SMS_VALIDITY_SECONDS") or 0)
    if not 0 < value <= MAX_VALIDITY_SECONDS:
        raise ValueError(f"validity_seconds must be within 1..{MAX_VALIDITY_SECONDS}: {value}")
    return value


def deliver_sms(
    message: Message,
    *,
    status_callback: str | None = None,
    validity_seconds: int | None = None,
    claimed: bool = False,
    commit: bool = True,
) -> Message:
    """Hand a pending SMS row to the provider; return it `sent` or raise a SendError.
    `claimed`: the caller committed the row `sending` itself; `commit=False`: the caller
    commits the provider's answer (a failure is always committed here)."""
    if message.channel != "sms":
        raise ValueError(f"message {message.id} is not an SMS")
    backend = sms_backend_name()
    validity = _validity(validity_seconds)
    settings = None
    if backend == twilio_backend.NAME:
        settings = twilio_backend.TwilioSettings.from_config(current_app.config)
        if not (settings.account_sid and settings.auth_token):
            raise ConfigError("SMS_BACKEND=twilio demande TWILIO_ACCOUNT_SID et TWILIO_AUTH_TOKEN.")
    sender = parse_sender(message.sender) if settings else None
    status_callback = status_callback or webhooks.status_callback_url()
    if claimed:
        check_claimed(message)
    else:
        claim(message, backend)
    try:
        if settings and sender:
            accepted = twilio_backend.send(
                settings,
                sender,
                message.to_address,
                message.body,
                status_callback=status_callback,
                validity_seconds=validity,
            )
        else:
            accepted = outbox.send_sms(message.to_address)
    except SendError as error:
        record_failure(message, error)
        raise
    return record_success(message, accepted, commit=commit)


def can_look_up() -> bool:
    """Can the provider say whether a message went out? (Twilio's message list can.)"""
    return sms_backend_name() == twilio_backend.NAME


def find_sent_sms(message: Message, since: datetime) -> Accepted | None:
    """The provider's record of this SMS if it took it (see twilio_backend.find_sent)."""
    settings = twilio_backend.TwilioSettings.from_config(current_app.config)
    return twilio_backend.find_sent(settings, message.to_address, message.body, since)


def send_sms(
    to_e164: str,
    body: str,
    *,
    prospect_id: int | None = None,
    status_callback: str | None = None,
    validity_seconds: int | None = None,
) -> Message:
    """Store and send one SMS now. Two identical calls send two SMS: deduplicate upstream."""
    message = prepare_sms(to_e164, body, prospect_id=prospect_id)
    return deliver_sms(message, status_callback=status_callback, validity_seconds=validity_seconds)
