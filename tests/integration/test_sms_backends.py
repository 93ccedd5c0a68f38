"""SMS through the outbox and through the real `twilio` client against the fake Twilio server."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from flask import Flask

import crm.config
from crm.config import Config, ConfigError
from crm.extensions import db
from crm.messaging import errors
from crm.messaging.errors import (
    AlreadySentError,
    Blocked,
    InvalidNumber,
    OptedOut,
    PermanentError,
    RetryLater,
    SendError,
    TransientError,
    classify_error_code,
    describe_error_code,
)
from crm.messaging.senders import parse_sender
from crm.messaging.sms import (
    current_sender,
    deliver_sms,
    prepare_sms,
    send_sms,
    sender_is_two_way,
)
from crm.models import Message
from crm.timeutil import utcnow

if TYPE_CHECKING:
    from tests.fakes import FakeTwilioServer

pytest_plugins = ["tests.fakes"]

TO = "+33612345678"
MESSAGING_SERVICE = "MG" + "a1" * 16


def messages() -> list[Message]:
    return list(db.session.scalars(sa.select(Message).order_by(Message.id)))


# --- outbox ----------------------------------------------------------------------------------


def test_outbox_stores_the_sms_as_sent(app_ctx: Flask) -> None:
    before = utcnow()
    message = send_sms(TO, "Bonjour, à demain !", prospect_id=None)
    db.session.expire_all()
    [row] = messages()
    assert row.id == message.id
    assert (row.channel, row.backend, row.status) == ("sms", "outbox", "sent")
    assert (row.to_address, row.body, row.sender) == (TO, "Bonjour, à demain !", "OpenLab")
    assert (row.encoding, row.segments) == ("GSM-7", 1)
    assert row.provider_id is None and row.error == ""
    assert row.created_at.tzinfo is UTC and row.sent_at is not None
    assert row.sent_at.tzinfo is UTC and before <= row.sent_at <= utcnow()


def test_outbox_does_not_deduplicate_two_identical_calls(app_ctx: Flask) -> None:
    send_sms(TO, "Rappel")
    send_sms(TO, "Rappel")
    assert [m.status for m in messages()] == ["sent", "sent"]


def test_outbox_refuses_a_number_that_is_not_e164_like_twilio(app_ctx: Flask) -> None:
    with pytest.raises(InvalidNumber) as caught:
        send_sms("06 12 34 56 78", "Bonjour")
    [row] = messages()
    assert caught.value.message_id == row.id
    assert (row.status, row.error_code, row.error_kind) == ("failed", 21211, "invalid_number")
    assert row.error == "Numéro de téléphone invalide."


def test_outbox_sender_is_one_way_unless_a_number_is_configured(
    app: Flask, app_ctx: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert current_sender().kind == "alphanumeric" and sender_is_two_way() is False
    monkeypatch.setitem(app.config, "TWILIO_SENDER", "+33757000000")
    assert sender_is_two_way() is True
    monkeypatch.setitem(app.config, "TWILIO_SENDER", "pas valide !")
    with pytest.raises(ConfigError, match="TWILIO_SENDER"):
        current_sender()


# --- the delivery guard ----------------------------------------------------------------------


def test_a_sent_message_is_never_handed_to_the_provider_again(
    app_ctx: Flask, sms_via_twilio: FakeTwilioServer
) -> None:
    message = send_sms(TO, "Une seule fois")
    assert len(sms_via_twilio.requests) == 1
    for status in ("sent", "sending", "failed", "unknown", "delivered"):
        message.status = status
        db.session.commit()
        with pytest.raises(AlreadySentError):
            deliver_sms(message)
    assert len(sms_via_twilio.requests) == 1


def test_a_stale_copy_of_a_claimed_row_is_refused_by_the_database(
    app: Flask, app_ctx: Flask, sms_via_twilio: FakeTwilioServer
) -> None:
    message = prepare_sms(TO, "Course")
    db.session.commit()
    assert message.status == "pending"  # loaded now, and not refreshed below
    with app.app_context():  # another worker delivers it meanwhile
        deliver_sms(db.session.get(Message, message.id))
    assert message.status == "pending"  # this copy is stale
    with pytest.raises(AlreadySentError) as caught:
        deliver_sms(message)
    assert caught.value.status == "sent"
    assert len(sms_via_twilio.requests) == 1


def test_two_workers_delivering_the_same_row_send_once(
    app: Flask, app_ctx: Flask, sms_via_twilio: FakeTwilioServer
) -> None:
    sms_via_twilio.slow(None, 0.3)
    message_id = prepare_sms(TO, "Concurrence").id
    db.session.commit()
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def worker() -> None:
        with app.app_context():
            row = db.session.get(Message, message_id)
            start.wait()
            try:
                deliver_sms(row)
                outcomes.append("sent")
            except AlreadySentError:
                outcomes.append("refused")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert sorted(outcomes) == ["refused", "sent"]
    assert len(sms_via_twilio.requests) == 1


def test_prepare_then_deliver_in_the_callers_transaction(
    app_ctx: Flask, sms_via_twilio: FakeTwilioServer
) -> None:
    message = prepare_sms(TO, "Préparé", prospect_id=None)
    assert message.id is not None and message.status == "pending"
    assert sms_via_twilio.requests == []
    deliver_sms(message, status_callback="https://crm.example/webhooks/twilio/status")
    assert message.status == "sent" and message.provider_id.startswith("SM")


# --- Twilio: what is sent and stored ---------------------------------------------------------


def test_twilio_sends_the_fields_and_stores_the_sid(
    app_ctx: Flask, sms_via_twilio: FakeTwilioServer
) -> None:
    callback = "https://crm.example/webhooks/twilio/status"
    message = send_sms(TO, "Votre atelier a lieu demain à 10 h.", status_callback=callback)
    [request] = sms_via_twilio.requests
    assert request.auth_ok
    assert request.path == f"/2010-04-01/Accounts/{sms_via_twilio.account_sid}/Messages.json"
    assert request.form == {
        "To": TO,
        "Body": "Votre atelier a lieu demain à 10 h.",
        "From": "OpenLab",
        "StatusCallback": callback,
        "ValidityPeriod": "14400",
    }
    [answer] = sms_via_twilio.sent
    db.session.expire_all()
    row = db.session.get(Message, message.id)
    assert (row.backend, row.status, row.provider_status) == ("twilio", "sent", "queued")
    assert row.provider_id == answer["sid"] and len(row.provider_id) == 34
    assert (row.sender, row.segments, row.encoding) == ("OpenLab", 1, "GSM-7")
    assert row.sent_at is not None and row.sent_at.tzinfo is UTC


def test_twilio_validity_period_can_be_shortened_per_message(
    app_ctx: Flask, sms_via_twilio: FakeTwilioServer
) -> None:
    send_sms(TO, "Ce matin", validity_seconds=3600)
    assert sms_via_twilio.requests[0].form["ValidityPeriod"] == "3600"
    # Receipts always come back to the public status webhook.
    callback = sms_via_twilio.requests[0].form["StatusCallback"]
    assert callback == app_ctx.config["PUBLIC_BASE_URL"].rstrip("/") + "/webhooks/twilio/status"
    with pytest.raises(ValueError):
        send_sms(TO, "Trop long", validity_seconds=40_000)


def test_twilio_counts_segments_of_a_long_ucs2_message(
    app_ctx: Flask, sms_via_twilio: FakeTwilioServer
) -> None:
    message = send_sms(TO, "Très bientôt ! " * 10)
    assert (message.encoding, message.segments) == ("UCS-2", 3)
    assert sms_via_twilio.sent[0]["num_segments"] == "3"


@pytest.mark.parametrize(
    ("sender", "field", "two_way", "provider_status"),
    [
        ("OpenLab", "From", False, "queued"),
        ("Open Lab 75", "From", False, "queued"),
        ("MGLAB", "From", False, "queued"),  # an alphanumeric name, not a service SID
        ("+33757000000", "From", True, "queued"),
        ("38123", "From", True, "queued"),
        (MESSAGING_SERVICE, "MessagingServiceSid", True, "accepted"),
    ],
)
def test_twilio_sender_kinds(
    app: Flask,
    app_ctx: Flask,
    sms_via_twilio: FakeTwilioServer,
    monkeypatch: pytest.MonkeyPatch,
    sender: str,
    field: str,
    two_way: bool,
    provider_status: str,
) -> None:
    monkeypatch.setitem(app.config, "TWILIO_SENDER", sender)
    assert sender_is_two_way() is two_way
    message = send_sms(TO, "Bonjour")
    form = sms_via_twilio.requests[0].form
    assert form[field] == sender
    [other] = {"From", "MessagingServiceSid"} - {field}
    assert other not in form
    assert message.provider_status == provider_status and message.sender == sender


@pytest.mark.parametrize(
    "value", ["", "OpenLab_CRM", "Open-Lab", "123456789012", "NomBeaucoupTropLong", "0612345678"]
)
def test_unusable_senders_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="Expéditeur SMS"):
        parse_sender(value)


# --- Twilio: failures ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error_class", "kind"),
    [
        (21211, InvalidNumber, "invalid_number"),
        (21614, InvalidNumber, "invalid_number"),
        (21610, OptedOut, "opted_out"),
        (30003, RetryLater, "retry_later"),
        (30008, RetryLater, "retry_later"),
        (30005, Blocked, "blocked"),
        (30006, Blocked, "blocked"),
        (30007, Blocked, "blocked"),
        (21408, PermanentError, "permanent"),
        (21617, PermanentError, "permanent"),
        (12345, PermanentError, "permanent"),
    ],
)
def test_twilio_error_codes_are_classified_and_recorded(
    app_ctx: Flask, sms_via_twilio: FakeTwilioServer, code: int, error_class: type, kind: str
) -> None:
    sms_via_twilio.fail(TO, code)
    with pytest.raises(SendError) as caught:
        send_sms(TO, "Bonjour")
    error = caught.value
    assert type(error) is error_class and error.kind == kind
    assert (error.code, error.http_status, error.maybe_sent) == (code, 400, False)
    assert error.retryable is (kind == "retry_later")
    db.session.expire_all()
    row = db.session.get(Message, error.message_id)
    assert (row.status, row.error_code, row.error_kind) == ("failed", code, kind)
    assert row.error == str(error) == describe_error_code(code)
    assert row.provider_id is None and row.sent_at is None


def test_a_rule_for_one_number_leaves_the_others_alone(
    app_ctx: Flask, sms_via_twilio: FakeTwilioServer
) -> None:
    sms_via_twilio.fail(TO, 21610)
    assert send_sms("+33698765432", "Bonjour").status == "sent"
    with pytest.raises(OptedOut):
        send_sms(TO, "Bonjour")


@pytest.mark.parametrize("status", [429, 500, 503])
def test_http_429_and_5xx_are_transient(
    app_ctx: Flask, sms_via_twilio: FakeTwilioServer, status: int
) -> None:
    sms_via_twilio.http_error(None, status)
    with pytest.raises(TransientError) as caught:
        send_sms(TO, "Bonjour")
    error = caught.value
    assert (error.http_status, error.maybe_sent, error.retryable) == (status, False, True)
    row = db.session.get(Message, error.message_id)
    assert (row.status, row.error_kind) == ("failed", "transient")
    assert len(sms_via_twilio.requests) == 1  # the backend does not retry


def test_a_timeout_is_transient_bounded_and_maybe_sent(
    app: Flask, app_ctx: Flask, sms_via_twilio: FakeTwilioServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "TWILIO_TIMEOUT_SECONDS", 0.5)
    sms_via_twilio.slow(TO, 5)
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        send_sms(TO, "Bonjour")
    assert time.monotonic() - started < 2.5
    error = caught.value
    assert error.maybe_sent is True and "peut-être" in str(error)
    row = db.session.get(Message, error.message_id)
    assert (row.status, row.error_kind) == ("unknown", "transient")
    assert len(sms_via_twilio.requests) == 1


def test_an_unreachable_server_is_transient_and_surely_not_sent(
    app: Flask, app_ctx: Flask, sms_via_twilio: FakeTwilioServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setitem(app.config, "TWILIO_BASE_URL", closed)
    with pytest.raises(TransientError) as caught:
        send_sms(TO, "Bonjour")
    assert caught.value.maybe_sent is False
    assert db.session.get(Message, caught.value.message_id).status == "failed"


def test_wrong_credentials_are_permanent(
    app: Flask, app_ctx: Flask, sms_via_twilio: FakeTwilioServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "TWILIO_AUTH_TOKEN", "not-the-token")
    with pytest.raises(PermanentError) as caught:
        send_sms(TO, "Bonjour")
    assert (caught.value.code, caught.value.http_status) == (20003, 401)
    assert "TWILIO_AUTH_TOKEN" in str(caught.value)
    assert sms_via_twilio.requests[0].auth_ok is False
    assert sms_via_twilio.sent == []


def test_twilio_backend_without_credentials_is_a_configuration_error(
    app: Flask, app_ctx: Flask, sms_via_twilio: FakeTwilioServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "TWILIO_ACCOUNT_SID", None)
    with pytest.raises(ConfigError):
        send_sms(TO, "Bonjour")
    db.session.rollback()
    assert messages() == []  # nothing was committed, nothing was sent
    assert sms_via_twilio.requests == []


# --- classification helpers (also used by the status webhook) --------------------------------


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (21211, "invalid_number"),
        ("21614", "invalid_number"),
        ("21610", "opted_out"),
        ("30003", "retry_later"),
        (30008, "retry_later"),
        ("30005", "blocked"),
        (30006, "blocked"),
        ("30007", "blocked"),
        ("30001", "permanent"),
        (None, "permanent"),
        ("", "permanent"),
        ("abc", "permanent"),
    ],
)
def test_classify_error_code(code: int | str | None, kind: str) -> None:
    assert classify_error_code(code) == kind
    assert describe_error_code(code)


def test_error_kinds_are_the_documented_ones() -> None:
    assert set(errors.ERROR_CLASSES) == set(errors.KINDS)
    assert {"retry_later", "transient"} == errors.RETRYABLE_KINDS


# --- choosing the backend from the environment -----------------------------------------------


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in (
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_SENDER",
        "SMTP_URL",
        "CRM_SMS_BACKEND",
        "CRM_EMAIL_BACKEND",
        "CRM_SMS_VALIDITY_SECONDS",
        "CRM_ENV",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SECRET_KEY", "cle-de-test")
    monkeypatch.setattr(crm.config, "load_dotenv", lambda *args, **kwargs: False)
    monkeypatch.setattr(crm.config.Config, "INSTANCE_DIR", tmp_path)
    return monkeypatch


def test_sms_backend_is_twilio_only_with_the_three_settings(env: pytest.MonkeyPatch) -> None:
    values = Config.from_env()
    assert (values["SMS_BACKEND"], values["SMS_VALIDITY_SECONDS"]) == ("outbox", 14400)
    env.setenv("TWILIO_ACCOUNT_SID", "AC123")
    env.setenv("TWILIO_AUTH_TOKEN", "secret")
    assert Config.from_env()["SMS_BACKEND"] == "outbox"
    env.setenv("TWILIO_SENDER", "OpenLab")
    assert Config.from_env()["SMS_BACKEND"] == "twilio"
    env.setenv("CRM_SMS_BACKEND", "outbox")
    env.setenv("CRM_SMS_VALIDITY_SECONDS", "7200")
    values = Config.from_env()
    assert (values["SMS_BACKEND"], values["SMS_VALIDITY_SECONDS"]) == ("outbox", 7200)


def test_sms_backend_misconfigurations_fail_at_start_up(env: pytest.MonkeyPatch) -> None:
    env.setenv("CRM_SMS_BACKEND", "twilio")
    with pytest.raises(ConfigError, match="TWILIO_ACCOUNT_SID"):
        Config.from_env()
    env.setenv("TWILIO_ACCOUNT_SID", "AC123")
    env.setenv("TWILIO_AUTH_TOKEN", "secret")
    env.setenv("TWILIO_SENDER", "Nom beaucoup trop long")
    with pytest.raises(ConfigError, match="TWILIO_SENDER"):
        Config.from_env()
    env.setenv("TWILIO_SENDER", "OpenLab")
    env.setenv("CRM_SMS_VALIDITY_SECONDS", "40000")
    with pytest.raises(ConfigError, match="CRM_SMS_VALIDITY_SECONDS"):
        Config.from_env()
    env.setenv("CRM_SMS_BACKEND", "pigeon")
    with pytest.raises(ConfigError, match="pigeon"):
        Config.from_env()


def test_sent_at_and_created_at_are_aware_utc_on_reload(app_ctx: Flask) -> None:
    message_id = send_sms(TO, "UTC").id
    db.session.remove()
    row = db.session.get(Message, message_id)
    assert row.created_at.utcoffset() == timedelta(0)
    assert row.sent_at is not None and row.sent_at.utcoffset() == timedelta(0)
