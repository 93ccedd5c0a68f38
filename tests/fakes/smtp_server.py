"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives, for the tests.

    with FakeSmtpServer() as server:            # or the `fake_smtp` pytest fixture
        server.url                               # smtp://127.0.0.1:<port>: SMTP_URL
        server.refuse("x@example.fr")            # RCPT TO answered 550 5.1.1
        server.refuse("y@example.fr", "451 4.3.0 Try again later")
        server.messages                          # ReceivedMail: .mail_from, .rcpt_tos, .message
        server.messages[0].message["Subject"]    # parsed with email.policy.default

FakeSmtpServer(username="u", password="p") checks AUTH (ReceivedMail.authenticated says
whether the client logged in); tls="starttls" offers STARTTLS
and tls="implicit" speaks TLS from the first byte (smtps://), with a self-signed certificate
made by `make_certificate` (the client trusts it through SSL_CERT_FILE).

Run alone (`python -m tests.fakes.smtp_server --port 8025 --log mails.jsonl`, as
`make prod-local` does), it appends one JSON line per message received (from, to, subject,
Message-ID) to the log, which the fault suite reads.
"""

from __future__ import annotations

import email
import json
import subprocess
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path
from ssl import PROTOCOL_TLS_SERVER, SSLContext
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

TlsMode = Literal["starttls", "implicit"] | None


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    tls: bool  # the message came over TLS (STARTTLS or implicit)
    authenticated: bool


class _Handler:
    def __init__(self) -> None:
        self.messages: list[ReceivedMail] = []
        self.refusals: dict[str, str] = {}

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        reply = self.refusals.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(
            ReceivedMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                message=message,
                raw=raw,
                tls=session.ssl is not None
                or server.transport.get_extra_info("sslcontext") is not None,
                authenticated=bool(session.authenticated),
            )
        )
        return "250 Message accepted for delivery"


class _Controller(Controller):
    """aiosmtpd's Controller, bound to its port (0: a free port chosen by the system)."""

    def _create_server(self) -> Any:
        return self._bind()

    async def _bind(self) -> Any:
        server = await self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=self.port, ssl=self.ssl_context
        )
        self.port = server.sockets[0].getsockname()[1]
        return server


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl command line): (cert, key)."""
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
    command += ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
    subprocess.run(
        [*command, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


class FakeSmtpServer:
    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: TlsMode = None,
        certificate: tuple[Path, Path] | None = None,
        port: int = 0,
        handler: _Handler | None = None,
    ) -> None:
        self.username, self.password, self.tls = username, password, tls
        self.handler = handler or _Handler()
        context = None
        if tls:
            if certificate is None:
                raise ValueError("a TLS server needs a certificate (make_certificate)")
            context = SSLContext(PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*map(str, certificate))
        # AUTH is offered (and checked) when a user is set; over STARTTLS only once in TLS.
        kwargs: dict[str, Any] = {"auth_require_tls": tls == "starttls"}
        if username:
            kwargs["authenticator"] = self._authenticate
        if tls == "starttls":
            kwargs["tls_context"] = context
        self._controller = _Controller(
            self.handler,
            hostname="127.0.0.1",
            port=port,
            ssl_context=context if tls == "implicit" else None,
            server_hostname="fake-smtp.test",
            **kwargs,
        )

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (
            data.login.decode(),
            data.password.decode(),
        ) == (self.username, self.password)
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    @property
    def port(self) -> int:
        return self._controller.port

    @property
    def url(self) -> str:
        scheme = "smtps" if self.tls == "implicit" else "smtp"
        auth = f"{self.username}:{self.password}@" if self.username else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[ReceivedMail]:
        return list(self.handler.messages)

    def refuse(self, address: str, reply: str = "550 5.1.1 Destinataire inconnu") -> None:
        self.handler.refusals[address.lower()] = reply

    def start(self) -> FakeSmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> FakeSmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _LoggingHandler(_Handler):
    """Also appends each message to a JSON-lines file (the process run by make prod-local)."""

    def __init__(self, log: Path) -> None:
        super().__init__()
        self.log = log

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        mail = self.messages.pop()  # a long campaign must not grow the process
        line = {
            "from": mail.mail_from,
            "to": mail.rcpt_tos,
            "subject": str(mail.message["Subject"]),
            "message_id": str(mail.message["Message-ID"]),
        }
        with self.log.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
        return reply


def main() -> None:
    """Run the fake as its own process until SIGTERM (make prod-local)."""
    import argparse

    from tests.fakes.process import serve_until_stopped

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    server = FakeSmtpServer(port=args.port, handler=_LoggingHandler(args.log))
    serve_until_stopped(server, f"fake SMTP on {server.url}")


if __name__ == "__main__":
    main()
