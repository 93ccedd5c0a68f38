"""The SMTP e-mail backend: one connection per message, STARTTLS when offered, no retry.

SMTP_URL: `smtp://user:password@host:587` (STARTTLS when the server offers it, port 587 by
default), `smtps://user:password@host:465` (implicit TLS, port 465 by default); no user, no
authentication. User and password are URL-encoded (`%40` for @). Certificates are verified
against the system's authorities (SSL_CERT_FILE can point to another bundle).
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import unquote, urlsplit

from crm.config import ConfigError
from crm.messaging.delivery import Accepted
from crm.messaging.errors import PermanentError, SendError, TransientError
from crm.timeutil import utcnow

NAME = "smtp"
_DEFAULT_PORTS = {"smtp": 587, "smtps": 465}
# 7-bit on the wire: accented text goes quoted-printable, whatever relays the server uses.
_POLICY = policy.default.clone(cte_type="7bit")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    implicit_tls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0

    @classmethod
    def from_url(cls, url: str, timeout: float = 10.0) -> SmtpSettings:
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ConfigError(
                "SMTP_URL doit ressembler à smtp://utilisateur:mot-de-passe@serveur:587 "
                "ou smtps://utilisateur:mot-de-passe@serveur:465."
            )
        return cls(
            host=parts.hostname,
            port=parts.port or _DEFAULT_PORTS[parts.scheme],
            implicit_tls=parts.scheme == "smtps",
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=timeout,
        )


def new_message_id(mail_from: str) -> str:
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "open-lab.invalid"
    return f"<{uuid.uuid4().hex}@{domain}>"


def build_email(
    *,
    mail_from: str,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    unsubscribe_url: str | None = None,
    message_id: str,
) -> EmailMessage:
    """A text e-mail with an optional HTML alternative and one-click unsubscribe headers."""
    message = EmailMessage(policy=_POLICY)
    message["Subject"] = subject
    message["From"] = mail_from
    message["To"] = to
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    if unsubscribe_url:
        message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


def _open(settings: SmtpSettings) -> smtplib.SMTP:
    context = ssl.create_default_context()
    connection: smtplib.SMTP
    if settings.implicit_tls:
        connection = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout, context=context
        )
    else:
        connection = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        connection.ehlo()
        if not settings.implicit_tls and connection.has_extn("starttls"):
            connection.starttls(context=context)
            connection.ehlo()
        if settings.username:
            connection.login(settings.username, settings.password or "")
    except BaseException:
        connection.close()
        raise
    return connection


def send(settings: SmtpSettings, message: EmailMessage) -> Accepted:
    """Deliver one e-mail to the SMTP server; raise a classified SendError when refused."""
    try:
        connection = _open(settings)
    except (OSError, smtplib.SMTPException) as exc:
        raise _classify(exc, maybe_sent=False) from exc
    try:
        connection.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise _classify(exc, maybe_sent=True) from exc
    finally:
        try:
            connection.quit()
        except (OSError, smtplib.SMTPException):
            connection.close()
    return Accepted(provider_id=str(message["Message-ID"]), provider_status="accepted")


def _by_code(code: int, text: str, reply: str) -> SendError:
    cls = PermanentError if code >= 500 else TransientError
    suffix = "" if code >= 500 else " : nouvel essai plus tard"
    return cls(f"{text} (code {code}){suffix}.", code=code, provider_message=reply)


def _reply(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _classify(exc: BaseException, *, maybe_sent: bool) -> SendError:
    """SMTP 5xx: permanent; 4xx, connection errors and timeouts: transient."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()))
        return _by_code(code, "Adresse refusée par le serveur de messagerie", _reply(reply))
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return PermanentError(
            "Identifiants SMTP refusés : vérifiez SMTP_URL.",
            code=exc.smtp_code,
            provider_message=_reply(exc.smtp_error),
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return _by_code(
            exc.smtp_code, "Le serveur de messagerie a refusé l'e-mail", _reply(exc.smtp_error)
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentError(
            "Certificat du serveur de messagerie non reconnu.", provider_message=str(exc)
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected) or not isinstance(
        exc, smtplib.SMTPException
    ):
        text = (
            "La connexion au serveur de messagerie a été perdue : l'e-mail a peut-être été envoyé."
            if maybe_sent
            else "Serveur de messagerie injoignable : nouvel essai plus tard."
        )
        return TransientError(text, maybe_sent=maybe_sent, provider_message=str(exc))
    return PermanentError(
        "Le serveur de messagerie n'accepte pas cet envoi.", provider_message=str(exc)
    )
