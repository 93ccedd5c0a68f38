"""Send one e-mail, whatever the backend: SMTP in production, the outbox in development.

The backend is `EMAIL_BACKEND` ("smtp" when SMTP_URL is set, else "outbox"). As for SMS:
`send_email(...)` stores and sends at once; `prepare_email(...)` then `deliver_email(message)`
lets the caller create the row in its own transaction first. Delivery commits the session,
marks the row `sending` before the SMTP conversation and never sends a row that is not
`pending` (AlreadySentError). Failures are stored on the row and raised as `SendError`s.
"""

from __future__ import annotations

from flask import current_app

from crm.config import ConfigError
from crm.extensions import db
from crm.messaging import outbox, smtp_backend
from crm.messaging.delivery import check_claimed, claim, record_failure, record_success
from crm.messaging.errors import SendError
from crm.models import Message

EMAIL_BACKENDS = (outbox.NAME, smtp_backend.NAME)


def email_backend_name() -> str:
    name = current_app.config.get("EMAIL_BACKEND") or outbox.NAME
    if name not in EMAIL_BACKENDS:
        raise ConfigError(f"EMAIL_BACKEND inconnu : « {name} » (attendu : smtp ou outbox).")
    return name


def _one_line(value: str) -> str:
    return " ".join(value.split())


def prepare_email(
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    *,
    unsubscribe_url: str | None = None,
    prospect_id: int | None = None,
    claimed: bool = False,
) -> Message:
    """A pending Message row (`sending` when `claimed`: see crm.messaging.sms), added and
    flushed (it has an id) but not committed."""
    if unsubscribe_url and any(c in unsubscribe_url for c in " <>\r\n"):
        raise ValueError(f"invalid unsubscribe URL: {unsubscribe_url!r}")
    message = Message(
        channel="email",
        backend=email_backend_name(),
        sender=current_app.config["MAIL_FROM"],
        to_address=to.strip(),
        subject=_one_line(subject),
        body=text,
        html=html or None,
        list_unsubscribe=unsubscribe_url or None,
        status="sending" if claimed else "pending",
        prospect_id=prospect_id,
    )
    db.session.add(message)
    db.session.flush()
    return message


def deliver_email(message: Message, *, claimed: bool = False, commit: bool = True) -> Message:
    """Hand a pending e-mail row to the server; return it `sent` or raise a SendError.
    `claimed` and `commit`: as for crm.messaging.sms.deliver_sms."""
    if message.channel != "email":
        raise ValueError(f"message {message.id} is not an e-mail")
    backend = email_backend_name()
    settings = None
    if backend == smtp_backend.NAME:
        url = current_app.config.get("SMTP_URL")
        if not url:
            raise ConfigError("EMAIL_BACKEND=smtp demande SMTP_URL.")
        timeout = float(current_app.config.get("SMTP_TIMEOUT_SECONDS") or 10.0)
        settings = smtp_backend.SmtpSettings.from_url(url, timeout)
    if claimed:
        check_claimed(message)
    else:
        claim(message, backend)
    try:
        if settings:
            mime = smtp_backend.build_email(
                mail_from=message.sender,
                to=message.to_address,
                subject=message.subject,
                text=message.body,
                html=message.html,
                unsubscribe_url=message.list_unsubscribe,
                message_id=smtp_backend.new_message_id(message.sender),
            )
            accepted = smtp_backend.send(settings, mime)
        else:
            accepted = outbox.send_email()
    except SendError as error:
        record_failure(message, error)
        raise
    return record_success(message, accepted, commit=commit)


def send_email(
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    *,
    unsubscribe_url: str | None = None,
    prospect_id: int | None = None,
) -> Message:
    """Store and send one e-mail now. Two identical calls send two e-mails."""
    message = prepare_email(
        to, subject, text, html, unsubscribe_url=unsubscribe_url, prospect_id=prospect_id
    )
    return deliver_email(message)
