"""Fakes at the edge of the system, and their pytest fixtures.

To use the fixtures in a test module (or, once for all, in tests/conftest.py):

    pytest_plugins = ["tests.fakes"]

- `fake_twilio`: a FakeTwilioServer (tests/fakes/twilio_server.py) running on 127.0.0.1.
- `sms_via_twilio`: the same server, with the app configured to send SMS through the real
  `twilio` client to it (SMS_BACKEND=twilio, sender "OpenLab", 2 s timeout); returns the server.
- `fake_smtp`: a FakeSmtpServer (tests/fakes/smtp_server.py, aiosmtpd) on 127.0.0.1.
- `email_via_smtp`: the same server, with the app configured to send e-mail to it over SMTP.
- `smtp_server_factory`: start more SMTP servers (auth, STARTTLS, implicit TLS), stopped after.
- `smtp_certificate`: a self-signed certificate for 127.0.0.1 (cert, key), once per session.

Import the classes only for type hints (under TYPE_CHECKING): a module imported before
`pytest_plugins` registers it cannot have its assertions rewritten (pytest warns).

Settings are changed on the session's app with monkeypatch: they come back after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.fakes.smtp_server import FakeSmtpServer, ReceivedMail, make_certificate
from tests.fakes.twilio_server import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioServer

__all__ = [
    "ACCOUNT_SID",
    "AUTH_TOKEN",
    "FakeSmtpServer",
    "FakeTwilioServer",
    "ReceivedMail",
    "make_certificate",
]


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer() as server:
        yield server


@pytest.fixture
def sms_via_twilio(
    app: Flask, fake_twilio: FakeTwilioServer, monkeypatch: pytest.MonkeyPatch
) -> FakeTwilioServer:
    for key, value in {
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": fake_twilio.account_sid,
        "TWILIO_AUTH_TOKEN": fake_twilio.auth_token,
        "TWILIO_SENDER": "OpenLab",
        "TWILIO_BASE_URL": fake_twilio.url,
        "TWILIO_TIMEOUT_SECONDS": 2.0,
    }.items():
        monkeypatch.setitem(app.config, key, value)
    return fake_twilio


@pytest.fixture
def fake_smtp() -> Iterator[FakeSmtpServer]:
    with FakeSmtpServer() as server:
        yield server


@pytest.fixture
def email_via_smtp(
    app: Flask, fake_smtp: FakeSmtpServer, monkeypatch: pytest.MonkeyPatch
) -> FakeSmtpServer:
    monkeypatch.setitem(app.config, "EMAIL_BACKEND", "smtp")
    monkeypatch.setitem(app.config, "SMTP_URL", fake_smtp.url)
    monkeypatch.setitem(app.config, "SMTP_TIMEOUT_SECONDS", 5.0)
    return fake_smtp


@pytest.fixture(scope="session")
def smtp_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def smtp_server_factory() -> Iterator[Callable[..., FakeSmtpServer]]:
    """`start(**kwargs)` starts a FakeSmtpServer(**kwargs); all are stopped after the test."""
    servers: list[FakeSmtpServer] = []

    def start(**kwargs: Any) -> FakeSmtpServer:
        server = FakeSmtpServer(**kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
