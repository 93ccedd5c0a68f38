"""Twilio webhook addresses and signatures (`X-Twilio-Signature`), in one place.

Twilio signs the public URL it called (scheme, host, path and query string) and every form
parameter with the account's auth token; behind a TLS proxy the app sees another URL, so the
check rebuilds it from PUBLIC_BASE_URL. With the outbox backend and no Twilio account, a key
derived from SECRET_KEY signs the development simulator's posts, so the same check runs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from flask import Request, current_app
from twilio.request_validator import RequestValidator

INBOUND_PATH = "/webhooks/twilio/sms"
STATUS_PATH = "/webhooks/twilio/status"


def public_url(path: str, query_string: bytes | str = b"") -> str:
    query = query_string.decode() if isinstance(query_string, bytes) else query_string
    base = str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/")
    return f"{base}{path}" + (f"?{query}" if query else "")


def status_callback_url() -> str:
    """Where Twilio posts delivery receipts (given with every messages.create)."""
    return public_url(STATUS_PATH)


def auth_token() -> str | None:
    """The key webhooks are signed with; None: no webhook can be trusted."""
    config = current_app.config
    if config.get("TWILIO_AUTH_TOKEN"):
        return str(config["TWILIO_AUTH_TOKEN"])
    if config.get("SMS_BACKEND") == "outbox":
        secret = str(config["SECRET_KEY"]).encode()
        return hmac.new(secret, b"outbox-simulator", hashlib.sha256).hexdigest()
    return None


def is_signed(request: Request) -> bool:
    """True when X-Twilio-Signature matches the public URL and every form parameter."""
    token, signature = auth_token(), request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        return False
    url = public_url(request.path, request.query_string)
    return bool(RequestValidator(token).validate(url, request.form, signature))


def sign(url: str, params: Mapping[str, str]) -> str:
    """The signature Twilio would send (the simulator and the tests post with it)."""
    token = auth_token()
    if token is None:
        raise RuntimeError("no webhook auth token configured")
    return str(RequestValidator(token).compute_signature(url, dict(params)))
