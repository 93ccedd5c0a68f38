"""E-mail through the outbox and over SMTP to a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import socket
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from flask import Flask

import crm.config
from crm.config import Config, ConfigError
from crm.extensions import db
from crm.messaging.email import deliver_email, prepare_email, send_email
from crm.messaging.errors import AlreadySentError, PermanentError, TransientError
from crm.messaging.smtp_backend import SmtpSettings
from crm.models import Message

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.fakes import FakeSmtpServer

pytest_plugins = ["tests.fakes"]

TO = "camille.martin@example.fr"
SUBJECT = "Votre participation à l'open lab : où et quand ?"
TEXT = "Bonjour Camille,\n\nL'atelier a lieu jeudi à 10 h.\n\nPour ne plus recevoir nos messages : https://crm.example/r/abc"
HTML = "<p>Bonjour Camille,</p><p>L'atelier a lieu <strong>jeudi à 10 h</strong>.</p>"
UNSUBSCRIBE = "https://crm.example/r/abc123?action=stop"


def rows() -> list[Message]:
    return list(db.session.scalars(sa.select(Message).order_by(Message.id)))


# --- outbox ----------------------------------------------------------------------------------


def test_outbox_stores_the_email_with_both_parts(app_ctx: Flask) -> None:
    message = send_email(TO, SUBJECT, TEXT, HTML, unsubscribe_url=UNSUBSCRIBE)
    db.session.expire_all()
    [row] = rows()
    assert row.id == message.id
    assert (row.channel, row.backend, row.status) == ("email", "outbox", "sent")
    assert (row.to_address, row.subject, row.body, row.html) == (TO, SUBJECT, TEXT, HTML)
    assert row.list_unsubscribe == UNSUBSCRIBE
    assert row.sender == "Open Lab CRM <ne-pas-repondre@open-lab.example>"
    assert row.sent_at is not None and row.sent_at.tzinfo is UTC


def test_a_subject_never_spans_two_lines(app_ctx: Flask) -> None:
    assert send_email(TO, "Rappel\r\nBcc: x@example.fr", "Texte").subject == (
        "Rappel Bcc: x@example.fr"
    )
    with pytest.raises(ValueError):
        send_email(TO, "Rappel", "Texte", unsubscribe_url="https://x.example/a>\r\nBcc: y")


def test_outbox_does_not_deduplicate_and_never_resends(app_ctx: Flask) -> None:
    first = send_email(TO, "Rappel", "Texte")
    send_email(TO, "Rappel", "Texte")
    assert [m.status for m in rows()] == ["sent", "sent"]
    with pytest.raises(AlreadySentError):
        deliver_email(first)


# --- SMTP ------------------------------------------------------------------------------------


def test_smtp_sends_text_and_html_with_unsubscribe_headers(
    app_ctx: Flask, email_via_smtp: FakeSmtpServer
) -> None:
    message = send_email(TO, SUBJECT, TEXT, HTML, unsubscribe_url=UNSUBSCRIBE)
    [mail] = email_via_smtp.messages
    assert mail.rcpt_tos == [TO]
    assert mail.mail_from == "ne-pas-repondre@open-lab.example"
    received = mail.message
    assert received["From"] == "Open Lab CRM <ne-pas-repondre@open-lab.example>"
    assert received["To"] == TO
    assert received["Subject"] == SUBJECT
    assert b"=?utf-8?" in mail.raw.split(b"\r\nFrom:")[0]  # the subject is RFC 2047 encoded
    assert max(mail.raw) < 128  # 7-bit on the wire: accents are encoded everywhere
    assert received["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received["Auto-Submitted"] == "auto-generated"
    assert received["Date"] is not None
    assert received.get_content_type() == "multipart/alternative"
    text_part = received.get_body(preferencelist=("plain",))
    html_part = received.get_body(preferencelist=("html",))
    assert text_part.get_content().replace("\r\n", "\n").rstrip("\n") == TEXT
    assert html_part.get_content().rstrip("\r\n") == HTML
    db.session.expire_all()
    row = db.session.get(Message, message.id)
    assert (row.backend, row.status, row.provider_status) == ("smtp", "sent", "accepted")
    assert row.provider_id == received["Message-ID"]
    assert row.provider_id.endswith("@open-lab.example>")


def test_smtp_without_html_or_unsubscribe_is_a_plain_text_email(
    app_ctx: Flask, email_via_smtp: FakeSmtpServer
) -> None:
    send_email(TO, "Merci", "Merci d'être venu·e !")
    received = email_via_smtp.messages[0].message
    assert received.get_content_type() == "text/plain"
    assert received.get_content().rstrip("\r\n") == "Merci d'être venu·e !"
    assert "List-Unsubscribe" not in received and "List-Unsubscribe-Post" not in received


def test_prepare_then_deliver(app_ctx: Flask, email_via_smtp: FakeSmtpServer) -> None:
    message = prepare_email(TO, "Plus tard", "Texte")
    db.session.commit()
    assert email_via_smtp.messages == []
    deliver_email(message)
    assert len(email_via_smtp.messages) == 1
    with pytest.raises(AlreadySentError):
        deliver_email(message)
    assert len(email_via_smtp.messages) == 1


def test_a_550_refusal_is_permanent(app_ctx: Flask, email_via_smtp: FakeSmtpServer) -> None:
    email_via_smtp.refuse(TO)
    with pytest.raises(PermanentError) as caught:
        send_email(TO, "Rappel", "Texte")
    error = caught.value
    assert (error.code, error.maybe_sent, error.retryable) == (550, False, False)
    assert "Destinataire inconnu" in error.provider_message
    row = db.session.get(Message, error.message_id)
    assert (row.status, row.error_code, row.error_kind) == ("failed", 550, "permanent")
    assert row.error.startswith("Adresse refusée")
    assert email_via_smtp.messages == []


def test_a_451_reply_is_transient(app_ctx: Flask, email_via_smtp: FakeSmtpServer) -> None:
    email_via_smtp.refuse(TO, "451 4.3.0 Try again later")
    with pytest.raises(TransientError) as caught:
        send_email(TO, "Rappel", "Texte")
    assert (caught.value.code, caught.value.retryable) == (451, True)
    assert db.session.get(Message, caught.value.message_id).status == "failed"


def test_an_unreachable_server_is_transient(
    app: Flask, app_ctx: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setitem(app.config, "EMAIL_BACKEND", "smtp")
    monkeypatch.setitem(app.config, "SMTP_URL", f"smtp://127.0.0.1:{port}")
    with pytest.raises(TransientError) as caught:
        send_email(TO, "Rappel", "Texte")
    assert caught.value.maybe_sent is False
    row = db.session.get(Message, caught.value.message_id)
    assert (row.status, row.error_kind) == ("failed", "transient")


def test_authentication(
    app: Flask,
    app_ctx: Flask,
    monkeypatch: pytest.MonkeyPatch,
    smtp_server_factory: Callable[..., FakeSmtpServer],
) -> None:
    server = smtp_server_factory(username="crm@example.fr", password="p@ss:word/1")
    monkeypatch.setitem(app.config, "EMAIL_BACKEND", "smtp")
    good = f"smtp://crm%40example.fr:p%40ss%3Aword%2F1@127.0.0.1:{server.port}"
    monkeypatch.setitem(app.config, "SMTP_URL", good)
    send_email(TO, "Avec authentification", "Texte")
    assert [m.authenticated for m in server.messages] == [True]
    monkeypatch.setitem(
        app.config, "SMTP_URL", f"smtp://crm%40example.fr:faux@127.0.0.1:{server.port}"
    )
    with pytest.raises(PermanentError) as caught:
        send_email(TO, "Mauvais mot de passe", "Texte")
    assert caught.value.code == 535 and "SMTP_URL" in str(caught.value)
    assert len(server.messages) == 1


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_tls(
    app: Flask,
    app_ctx: Flask,
    monkeypatch: pytest.MonkeyPatch,
    smtp_server_factory: Callable[..., FakeSmtpServer],
    smtp_certificate: tuple[Path, Path],
    tls: str,
) -> None:
    server = smtp_server_factory(username="u", password="p", tls=tls, certificate=smtp_certificate)
    monkeypatch.setitem(app.config, "EMAIL_BACKEND", "smtp")
    monkeypatch.setitem(app.config, "SMTP_URL", server.url)
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp_certificate[0]))
    send_email(TO, "Chiffré", "Texte")
    [mail] = server.messages
    assert (mail.tls, mail.authenticated) == (True, True)


def test_an_untrusted_certificate_is_refused(
    app: Flask,
    app_ctx: Flask,
    monkeypatch: pytest.MonkeyPatch,
    smtp_server_factory: Callable[..., FakeSmtpServer],
    smtp_certificate: tuple[Path, Path],
) -> None:
    server = smtp_server_factory(tls="starttls", certificate=smtp_certificate)
    monkeypatch.setitem(app.config, "EMAIL_BACKEND", "smtp")
    monkeypatch.setitem(app.config, "SMTP_URL", server.url)
    with pytest.raises(PermanentError, match="Certificat"):
        send_email(TO, "Chiffré", "Texte")
    assert server.messages == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.fr", SmtpSettings("mail.example.fr", 587)),
        ("smtp://mail.example.fr:25", SmtpSettings("mail.example.fr", 25)),
        ("smtps://u:p@mail.example.fr", SmtpSettings("mail.example.fr", 465, True, "u", "p")),
        (
            "smtp://a%40b.fr:x%2Fy%3Az@mail.example.fr:2525",
            SmtpSettings("mail.example.fr", 2525, False, "a@b.fr", "x/y:z"),
        ),
    ],
)
def test_smtp_url(url: str, expected: SmtpSettings) -> None:
    assert SmtpSettings.from_url(url) == expected


@pytest.mark.parametrize("url", ["http://mail.example.fr", "smtp://", "mail.example.fr:25"])
def test_bad_smtp_url(url: str) -> None:
    with pytest.raises(ConfigError, match="SMTP_URL"):
        SmtpSettings.from_url(url)


def test_email_backend_is_smtp_when_smtp_url_is_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("SMTP_URL", "CRM_EMAIL_BACKEND", "CRM_SMS_BACKEND", "TWILIO_SENDER", "CRM_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SECRET_KEY", "cle-de-test")
    monkeypatch.setattr(crm.config, "load_dotenv", lambda *args, **kwargs: False)
    monkeypatch.setattr(crm.config.Config, "INSTANCE_DIR", tmp_path)
    assert Config.from_env()["EMAIL_BACKEND"] == "outbox"
    monkeypatch.setenv("SMTP_URL", "smtp://mail.example.fr:587")
    assert Config.from_env()["EMAIL_BACKEND"] == "smtp"
    monkeypatch.setenv("CRM_EMAIL_BACKEND", "outbox")
    assert Config.from_env()["EMAIL_BACKEND"] == "outbox"
    monkeypatch.delenv("SMTP_URL")
    monkeypatch.setenv("CRM_EMAIL_BACKEND", "smtp")
    with pytest.raises(ConfigError, match="SMTP_URL"):
        Config.from_env()
