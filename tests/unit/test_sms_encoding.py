"""sms_info: GSM-7 or UCS-2, length and segments, as the network and Twilio count them."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm.messaging.encoding import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    SmsInfo,
    is_gsm7,
    sms_info,
    ucs2_characters,
)

GSM_IN_FRENCH = "éèùìòÇàÉäöñüÄÖÑÜßÅåÆæØø"
NOT_GSM_IN_FRENCH = "çêâîôûœŒëïÈÊÀÂÎÔÛÙ’«»…–"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", SmsInfo(0, "GSM-7", 0, 160)),
        ("Bonjour", SmsInfo(7, "GSM-7", 1, 160)),
        ("é", SmsInfo(1, "GSM-7", 1, 160)),
        ("Ç", SmsInfo(1, "GSM-7", 1, 160)),
        ("ç", SmsInfo(1, "UCS-2", 1, 70)),
        ("ê", SmsInfo(1, "UCS-2", 1, 70)),
        ("l’atelier", SmsInfo(9, "UCS-2", 1, 70)),
        ("l'atelier", SmsInfo(9, "GSM-7", 1, 160)),
        ("€", SmsInfo(2, "GSM-7", 1, 160)),
        ("^{}\\[~]|€", SmsInfo(18, "GSM-7", 1, 160)),
        ("Prix : 5 €", SmsInfo(11, "GSM-7", 1, 160)),
        ("ligne 1\nligne 2", SmsInfo(15, "GSM-7", 1, 160)),
        ("😀", SmsInfo(2, "UCS-2", 1, 70)),
        ("Merci 🙂", SmsInfo(8, "UCS-2", 1, 70)),
        # GSM-7 boundaries: 160 in one segment, 153 a segment once split.
        ("a" * 160, SmsInfo(160, "GSM-7", 1, 160)),
        ("a" * 161, SmsInfo(161, "GSM-7", 2, 153)),
        ("a" * 306, SmsInfo(306, "GSM-7", 2, 153)),
        ("a" * 307, SmsInfo(307, "GSM-7", 3, 153)),
        ("a" * 459, SmsInfo(459, "GSM-7", 3, 153)),
        ("a" * 460, SmsInfo(460, "GSM-7", 4, 153)),
        # Escaped characters cost two septets.
        ("€" * 80, SmsInfo(160, "GSM-7", 1, 160)),
        ("€" * 81, SmsInfo(162, "GSM-7", 2, 153)),
        ("a" * 159 + "€", SmsInfo(161, "GSM-7", 2, 153)),
        # An escape pair is never cut: 152 septets + € does not fit in the first 153.
        ("a" * 152 + "€" + "a" * 152, SmsInfo(306, "GSM-7", 3, 153)),
        # UCS-2 boundaries: 70 in one segment, 67 a segment once split.
        ("ê" * 70, SmsInfo(70, "UCS-2", 1, 70)),
        ("ê" * 71, SmsInfo(71, "UCS-2", 2, 67)),
        ("ê" * 134, SmsInfo(134, "UCS-2", 2, 67)),
        ("ê" * 135, SmsInfo(135, "UCS-2", 3, 67)),
        ("ê" + "a" * 69, SmsInfo(70, "UCS-2", 1, 70)),
        ("ê" + "a" * 70, SmsInfo(71, "UCS-2", 2, 67)),
        # An emoji counts 2 and is never cut in two.
        ("😀" * 35, SmsInfo(70, "UCS-2", 1, 70)),
        ("😀" * 36, SmsInfo(72, "UCS-2", 2, 67)),
        ("ê" * 66 + "😀" + "ê" * 66, SmsInfo(134, "UCS-2", 3, 67)),
    ],
)
def test_table(text: str, expected: SmsInfo) -> None:
    assert sms_info(text) == expected


def test_one_accent_outside_gsm7_cuts_a_segment_from_160_to_70() -> None:
    text = "Bonjour, vous êtes invité à l'open lab du 12 mars. Répondez OUI pour confirmer."
    assert sms_info(text.replace("ê", "e")).encoding == "GSM-7"
    info = sms_info(text)
    assert (info.encoding, info.segments, info.per_segment) == ("UCS-2", 2, 67)


@pytest.mark.parametrize("char", list(GSM_IN_FRENCH))
def test_french_letters_in_gsm7(char: str) -> None:
    assert is_gsm7(char)
    assert sms_info(char).encoding == "GSM-7"


@pytest.mark.parametrize("char", list(NOT_GSM_IN_FRENCH))
def test_french_letters_outside_gsm7(char: str) -> None:
    assert not is_gsm7(char)
    assert sms_info(char).encoding == "UCS-2"


def test_the_alphabet_has_128_codes_minus_the_escape() -> None:
    assert len(GSM7_BASIC) == 127
    assert GSM7_BASIC.isdisjoint(GSM7_EXTENSION)
    assert set(string.ascii_letters + string.digits) <= GSM7_BASIC
    assert "`" not in GSM7_BASIC and "`" not in GSM7_EXTENSION  # the backquote is not GSM-7


def test_ucs2_characters_lists_the_culprits_once_in_order() -> None:
    assert ucs2_characters("Ça va ? Très bien, à bientôt… l’équipe ça") == ["ô", "…", "’", "ç"]
    assert ucs2_characters("Bonjour €") == []


@given(st.text(min_size=1))
def test_non_empty_text_costs_at_least_one_segment(text: str) -> None:
    info = sms_info(text)
    assert info.segments >= 1
    assert info.length >= len(text)
    assert info.segments * info.per_segment >= info.length


@given(st.text(), st.characters())
def test_appending_never_lowers_the_number_of_segments(text: str, extra: str) -> None:
    assert sms_info(text + extra).segments >= sms_info(text).segments


@given(st.text(alphabet=string.ascii_letters + string.digits))
def test_ascii_letters_and_digits_are_always_gsm7(text: str) -> None:
    info = sms_info(text)
    assert info.encoding == "GSM-7"
    assert info.length == len(text)


@given(st.text())
def test_ucs2_length_counts_utf16_code_units(text: str) -> None:
    info = sms_info(text)
    if info.encoding == "UCS-2":
        assert info.length == len(text.encode("utf-16-le")) // 2
        assert ucs2_characters(text)
    else:
        assert not ucs2_characters(text)
