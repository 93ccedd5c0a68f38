"""Normalisation of what people and providers send: phones in E.164, e-mails, the search key,
record numbers."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email

DEFAULT_REGION = "FR"
# French overseas departments have their own regions in libphonenumber: a national number
# such as 0690 12 34 56 only parses with the right one.
_OVERSEAS_REGIONS = ("GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF", "NC", "PF", "WF")
_PHONE_CHARS = re.compile(r"[+(]?\d[\d\s.\-()/]{7,}\d")


MAX_ID_DIGITS = 18  # a 64-bit integer column holds any 18-digit number


def parse_id(raw: object) -> int | None:
    """A record number (or any count) from a URL, a hidden field or a provider's form, or
    None: ASCII digits only (`isdigit` alone accepts "²", which `int` refuses), at most 18."""
    text = "" if raw is None else str(raw).strip()
    if not text.isascii() or not text.isdigit() or len(text) > MAX_ID_DIGITS:
        return None
    return int(text)


def normalise_phone(raw: str | None) -> str | None:
    """E.164 for a valid French (metropolitan or overseas) or international number, else None."""
    if not raw or not raw.strip():
        return None
    candidates = [raw.strip()]
    candidates += [m.group(0) for m in _PHONE_CHARS.finditer(raw)]  # "tel: 06 12 ... (pro)"
    for text in candidates:
        for region in (DEFAULT_REGION, *_OVERSEAS_REGIONS):
            try:
                number = phonenumbers.parse(text, region)
            except phonenumbers.NumberParseException:
                break
            if phonenumbers.is_valid_number(number):
                return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def format_phone(e164: str | None) -> str:
    """Display form: 06 12 34 56 78 for French numbers, international form otherwise."""
    if not e164:
        return ""
    number = phonenumbers.parse(e164, None)
    if number.country_code == 33:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def normalise_email(raw: str | None) -> str | None:
    """The lower-cased address if its syntax is valid (no DNS check), else None."""
    if not raw or not raw.strip():
        return None
    try:
        info = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return info.normalized.lower()


def fold(text: str) -> str:
    """Lower case without accents: 'Élodie' and 'elodie' match."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower().strip()


def search_key(*parts: str | None) -> str:
    return " ".join(fold(p) for p in parts if p)
