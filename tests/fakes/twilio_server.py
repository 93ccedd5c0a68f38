"""A small fake of Twilio's Messages API on 127.0.0.1, for the real `twilio` client.

    with FakeTwilioServer() as server:          # or the `fake_twilio` pytest fixture
        server.url                               # http://127.0.0.1:<port>: TWILIO_BASE_URL
        server.fail("+33600000001", 21211)       # this number gets Twilio error 21211
        server.fail(None, 21610)                 # every number gets 21610
        server.http_error("+336...", 429)        # a bare HTTP 429 (or 500, 503...)
        server.slow("+336...", 2.0)              # answer after 2 s (to trigger a timeout)
        server.program("+336...", error_code=30007, delay=0.5)   # the general form
        server.reset()                           # forget the rules and the requests
        server.requests                          # every request: .path, .form, .auth_ok
        server.sent                              # the messages it accepted (dicts, as answered)

Run alone (`python -m tests.fakes.twilio_server --port 8081`, as `make prod-local` does), it is
driven over HTTP by the fault suite: POST /_fake/program (form: to, error_code, http_status,
delay), POST /_fake/reset, GET /_fake/sent (the accepted messages, JSON).

It answers POST /2010-04-01/Accounts/{sid}/Messages.json like Twilio: 201 with the message
JSON (sid "SM" + 32 hex, status "queued", or "accepted" with a Messaging Service), 401 with
error 20003 when the HTTP basic auth is not account sid / auth token, 400 with 21602, 21603 or
21604 when Body, From/MessagingServiceSid or To is missing, 404 for any other path. GET on the
same path lists the accepted messages, newest first, filtered by To (and PageSize), as
Twilio's list resource does. A message answered late (the `delay` rule) is still accepted,
as a slow provider would: the client that gave up does not know whether it went out.
"""

from __future__ import annotations

import json
import threading
import uuid
from base64 import b64decode
from dataclasses import dataclass, field
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from crm.messaging.encoding import sms_info
from crm.timeutil import utcnow

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "fake-auth-token"
_PREFIX = "/2010-04-01/Accounts/"
_MISSING = {
    "To": (21604, "A 'To' phone number is required."),
    "Body": (21602, "Message body is required."),
}

ERROR_MESSAGES = {
    20003: "Authenticate",
    21211: "The 'To' number is not a valid phone number.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}


@dataclass
class Rule:
    error_code: int | None = None
    http_status: int | None = None
    delay: float = 0.0


@dataclass
class RecordedRequest:
    method: str
    path: str
    form: dict[str, str]
    headers: dict[str, str]
    auth_ok: bool


@dataclass
class _State:
    account_sid: str
    auth_token: str
    rules: dict[str | None, Rule] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeTwilio/1.0"
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    # The answer goes out as two writes (headers, then body): with Nagle's algorithm the body
    # waits for the client's delayed ACK of the headers, 40 ms on Linux once the connection
    # looks interactive (requests sent soon after each answer, as a busy worker does).
    disable_nagle_algorithm = True
    state: _State  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep the test output clean

    def _answer(self, status: int, payload: dict[str, Any] | None) -> None:
        body = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, code: int, message: str | None = None) -> None:
        self._answer(
            status,
            {
                "code": code,
                "message": message or ERROR_MESSAGES.get(code, f"Error {code}"),
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
        )

    def _auth_ok(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return (user, password) == (self.state.account_sid, self.state.auth_token)

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/_fake/sent":
            self._answer(200, {"messages": self._sent()})
            return
        if not (path.startswith(_PREFIX) and path.endswith("/Messages.json")):
            self._error(404, 20404, "The requested resource was not found")
            return
        if not self._auth_ok() or path[len(_PREFIX) : -len("/Messages.json")] != (
            self.state.account_sid
        ):
            self._error(401, 20003)
            return
        params = dict(parse_qsl(query))
        with self.state.lock:
            rule = self.state.rules.get(params.get("To")) or self.state.rules.get(None) or Rule()
        if rule.delay:  # a slow or failing provider is slow or failing for lookups too
            self.state.stopping.wait(rule.delay)
        if rule.http_status:
            self._answer(rule.http_status, None)
            return
        found = [m for m in reversed(self._sent()) if m["to"] == params.get("To", m["to"])]
        size = int(params.get("PageSize") or 50)
        self._answer(
            200,
            {
                "messages": found[:size],
                "page": 0,
                "page_size": size,
                "first_page_uri": self.path,
                "next_page_uri": None,
                "previous_page_uri": None,
                "uri": self.path,
                "start": 0,
                "end": min(size, len(found)),
            },
        )

    def _sent(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.sent)

    def _control(self, form: dict[str, str]) -> None:
        """The fault suite's remote control (only when run as a process)."""
        if self.path == "/_fake/reset":
            with self.state.lock:
                self.state.rules.clear()
        elif self.path == "/_fake/program":
            rule = Rule(
                error_code=int(form["error_code"]) if form.get("error_code") else None,
                http_status=int(form["http_status"]) if form.get("http_status") else None,
                delay=float(form.get("delay") or 0),
            )
            with self.state.lock:
                self.state.rules[form.get("to") or None] = rule
        else:
            self._error(404, 20404, "The requested resource was not found")
            return
        self._answer(200, {"ok": True})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
        if self.path.startswith("/_fake/"):
            self._control(form)
            return
        auth_ok = self._auth_ok()
        state = self.state
        with state.lock:
            state.requests.append(
                RecordedRequest("POST", self.path, form, dict(self.headers.items()), auth_ok)
            )
            rule = state.rules.get(form.get("To")) or state.rules.get(None) or Rule()
        if rule.delay:
            state.stopping.wait(rule.delay)
        parts = self.path.split("?")[0]
        if not (parts.startswith(_PREFIX) and parts.endswith("/Messages.json")):
            self._error(404, 20404, "The requested resource was not found")
            return
        sid = parts[len(_PREFIX) : -len("/Messages.json")]
        if not auth_ok or sid != state.account_sid:
            self._error(401, 20003)
            return
        if rule.http_status:
            self._answer(rule.http_status, None)
            return
        for name, (code, message) in _MISSING.items():
            if not form.get(name):
                self._error(400, code, message)
                return
        if not (form.get("From") or form.get("MessagingServiceSid")):
            self._error(400, 21603, "A 'From' phone number is required.")
            return
        if rule.error_code:
            self._error(400, rule.error_code)
            return
        self._answer(201, self._accept(form))

    def _accept(self, form: dict[str, str]) -> dict[str, Any]:
        sid = "SM" + uuid.uuid4().hex
        service = form.get("MessagingServiceSid")
        now = format_datetime(utcnow())
        message = {
            "sid": sid,
            "account_sid": self.state.account_sid,
            "messaging_service_sid": service,
            "to": form["To"],
            "from": form.get("From") or None,
            "body": form["Body"],
            "status": "accepted" if service and not form.get("From") else "queued",
            "num_segments": str(sms_info(form["Body"]).segments),
            "num_media": "0",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "uri": f"{_PREFIX}{self.state.account_sid}/Messages/{sid}.json",
            "subresource_uris": {
                "media": f"{_PREFIX}{self.state.account_sid}/Messages/{sid}/Media.json"
            },
        }
        with self.state.lock:
            self.state.sent.append(message)
        return message


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that gave up (timeout) leaves a broken pipe: not an error here


class FakeTwilioServer:
    """The fake Messages API on a free port of 127.0.0.1 (see the module docstring)."""

    def __init__(
        self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN, port: int = 0
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._state = _State(account_sid, auth_token)
        handler = type("Handler", (_Handler,), {"state": self._state})
        self._server = _Server(("127.0.0.1", port), handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeTwilioServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._state.stopping.set()  # wake the slow answers up
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeTwilioServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _set(self, to: str | None, rule: Rule) -> None:
        with self._state.lock:
            self._state.rules[to] = rule

    def program(
        self,
        to: str | None = None,
        *,
        error_code: int | None = None,
        http_status: int | None = None,
        delay: float = 0.0,
    ) -> None:
        """The general form: for `to` (None: every number without its own rule)."""
        self._set(to, Rule(error_code=error_code, http_status=http_status, delay=delay))

    def fail(self, to: str | None, error_code: int) -> None:
        """Answer Twilio error `error_code` (HTTP 400) for `to`, or for every number (None)."""
        self._set(to, Rule(error_code=error_code))

    def http_error(self, to: str | None, status: int) -> None:
        """Answer a bare HTTP `status` (429, 500, 503...) with an empty body."""
        self._set(to, Rule(http_status=status))

    def slow(self, to: str | None, seconds: float) -> None:
        """Wait `seconds` before answering (normally) for `to`, or for every number."""
        self._set(to, Rule(delay=seconds))

    def reset(self) -> None:
        with self._state.lock:
            self._state.rules.clear()
            self._state.requests.clear()
            self._state.sent.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._state.lock:
            return list(self._state.requests)

    @property
    def sent(self) -> list[dict[str, Any]]:
        with self._state.lock:
            return list(self._state.sent)


def main() -> None:
    """Run the fake as its own process until SIGTERM (make prod-local)."""
    import argparse

    from tests.fakes.process import serve_until_stopped

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--account-sid", default=ACCOUNT_SID)
    parser.add_argument("--auth-token", default=AUTH_TOKEN)
    args = parser.parse_args()
    server = FakeTwilioServer(args.account_sid, args.auth_token, args.port)
    serve_until_stopped(server, f"fake Twilio on {server.url}")


if __name__ == "__main__":
    main()
