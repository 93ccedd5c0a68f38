"""SMS length: GSM-7 or UCS-2, and how many segments a text costs (3GPP TS 23.038).

A text made only of GSM-7 characters costs 7 bits a character: 160 characters in one segment,
153 a segment once it is split (the concatenation header takes the rest). One character outside
GSM-7 (ê, ç, œ, the typographic apostrophe ’, an emoji...) switches the whole text to UCS-2:
70 UTF-16 code units in one segment, 67 a segment once split, and an emoji counts 2.

Segments are packed the way the network does it: an escaped GSM-7 character (€, [, ...) or a
UTF-16 surrogate pair is never cut in two, so a segment can hold one unit less than the maximum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The 127 printable characters of the GSM-7 default alphabet (the 128th code is the escape)."""

GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
"""Characters reached through the escape code: each costs 2 septets."""

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


@dataclass(frozen=True)
class SmsInfo:
    """What a text costs: `length` in septets (GSM-7) or UTF-16 code units (UCS-2)."""

    length: int
    encoding: Encoding
    segments: int
    per_segment: int


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def ucs2_characters(text: str) -> list[str]:
    """The characters, in order of first appearance, that force UCS-2 (for the template editor)."""
    seen: dict[str, None] = {}
    for c in text:
        if c not in GSM7_BASIC and c not in GSM7_EXTENSION:
            seen.setdefault(c, None)
    return list(seen)


def _units(text: str, encoding: Encoding) -> list[int]:
    """The cost of every character: septets for GSM-7, UTF-16 code units for UCS-2."""
    if encoding == "GSM-7":
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def _pack(units: list[int], capacity: int) -> int:
    """Segments needed when characters may not straddle two segments."""
    segments, used = 1, 0
    for cost in units:
        if used + cost > capacity:
            segments, used = segments + 1, 0
        used += cost
    return segments


def sms_info(text: str) -> SmsInfo:
    """Encoding, length and number of segments of an SMS body (pure function)."""
    encoding: Encoding = "GSM-7" if is_gsm7(text) else "UCS-2"
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if encoding == "GSM-7" else (UCS2_SINGLE, UCS2_MULTI)
    units = _units(text, encoding)
    length = sum(units)
    if length == 0:
        return SmsInfo(0, encoding, 0, single)
    if length <= single:
        return SmsInfo(length, encoding, 1, single)
    return SmsInfo(length, encoding, _pack(units, multi), multi)
