"""Web defences shared by every response, and personal data kept out of the logs.

- `security_headers`: the Content-Security-Policy (DSFR and our own static files only: no
  inline script, no inline style, no `on…=` handler, no frame), nosniff, no Referer to other
  sites (a personal link's token must not leak), no framing, a minimal Permissions-Policy,
  COOP, and HSTS when the app runs in production over HTTPS (`HSTS_SECONDS`).
- `mask_personal_data` / `PersonalDataFilter`: phone numbers (E.164 and French national) and
  e-mail addresses in a log line become "+33 6 •• •• •• 78" / "c•••@example.fr". Installed by
  create_app on every record created afterwards, whatever its logger or handler.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask, Response

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'self'",
        "object-src 'none'",
    )
)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": PERMISSIONS_POLICY,
    "Cross-Origin-Opener-Policy": "same-origin",
}


def init_app(app: Flask) -> None:
    """Headers on every response; personal data masked in every log record."""

    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        seconds = int(app.config.get("HSTS_SECONDS") or 0)
        if seconds > 0:
            response.headers.setdefault(
                "Strict-Transport-Security", f"max-age={seconds}; includeSubDomains"
            )
        return response

    install_log_masking()


# --- Personal data in logs ------------------------------------------------------------------

MASK = "••"
_SEP = r"[ .\-]?"
# +33 6 12 34 56 78, +33612345678, 0033 6 12..., 06 12 34 56 78, 06.12.34.56.78, 0612345678
_FRENCH = re.compile(
    rf"(?<![\w+])(?P<prefix>\+33{_SEP}(?:\(0\){_SEP})?|0033{_SEP}|0)(?P<first>[1-9])"
    rf"(?P<rest>(?:{_SEP}\d{{2}}){{4}})(?!\d)"
)
# Any other E.164 number: + then 8 to 15 digits, possibly grouped by spaces, dots or dashes.
_E164 = re.compile(r"(?<![\w+])\+\d(?:[ .\-]?\d){7,14}(?!\d)")
_EMAIL = re.compile(
    r"(?<![\w.+-])([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
)


def _french(match: re.Match[str]) -> str:
    last = re.sub(r"\D", "", match.group("rest"))[-2:]
    prefix = "0" if match.group("prefix") == "0" else "+33 "
    return f"{prefix}{match.group('first')} {MASK} {MASK} {MASK} {last}"


def _e164(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "+" + "•" * (len(digits) - 2) + digits[-2:]


def mask_personal_data(text: str) -> str:
    """Phone numbers keep their last two digits, e-mail addresses their first letter."""
    if not text:
        return text
    text = _FRENCH.sub(_french, text)
    text = _E164.sub(_e164, text)
    return _EMAIL.sub(lambda m: f"{m.group(1)}•••@{m.group(2)}", text)


class PersonalDataFilter(logging.Filter):
    """Rewrites a record's message (its args merged in) and its traceback text, masked."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_crm_masked", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it for logging to report
            return True
        record.msg, record.args = mask_personal_data(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_personal_data(record.exc_text)
        record._crm_masked = True
        return True


_installed = threading.Lock()
_FILTER = PersonalDataFilter()


def install_log_masking() -> None:
    """Mask every record when it is created (so every handler, added before or after, gets
    the masked text), and filter the root handlers too for records made by hand. Idempotent."""
    with _installed:
        factory = logging.getLogRecordFactory()
        if getattr(factory, "_crm_masking", False):
            return
        logging.setLogRecordFactory(_masking_factory(factory))
        for handler in logging.getLogger().handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)


def _masking_factory(inner: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = inner(*args, **kwargs)
        _FILTER.filter(record)
        return record

    factory._crm_masking = True  # type: ignore[attr-defined]
    return factory
