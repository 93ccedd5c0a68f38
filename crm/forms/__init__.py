"""Flask-WTF forms: field validation only, messages in French."""

MAX_ID_DIGITS = 18  # a 64-bit integer column holds any 18-digit number


def parse_id(raw: object) -> int | None:
    """A record number from a URL or a hidden field, or None: ASCII digits only (`isdigit`
    alone accepts "²", which `int` refuses) and at most 18 of them."""
    text = "" if raw is None else str(raw)
    if not text.isascii() or not text.isdigit() or len(text) > MAX_ID_DIGITS:
        return None
    return int(text)
