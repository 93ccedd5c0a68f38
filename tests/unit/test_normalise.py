from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from crm.services.normalise import (
    fold,
    format_phone,
    normalise_email,
    normalise_phone,
    search_key,
)


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("06 12 34 56 78", "+33612345678"),
        ("06.12.34.56.78", "+33612345678"),
        ("06-12-34-56-78", "+33612345678"),
        ("0612345678", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("+33 (0)6 12 34 56 78", "+33612345678"),
        ("0033 6 12 34 56 78", "+33612345678"),
        ("07 81 23 45 67", "+33781234567"),
        ("01 42 75 80 00", "+33142758000"),
        # Overseas departments: national numbers only parse with their own region.
        ("0262 21 23 45", "+262262212345"),
        ("0692 12 34 56", "+262692123456"),
        ("0690 12 34 56", "+590690123456"),
        ("0696 12 34 56", "+596696123456"),
        ("0694 12 34 56", "+594694123456"),
        ("+262 692 12 34 56", "+262692123456"),
        # Text around the number.
        ("tél : 06 12 34 56 78", "+33612345678"),
        ("Mobile 06.12.34.56.78 (pro)", "+33612345678"),
        ("06 12 34 56 78 après 18h", "+33612345678"),
        ("+44 7911 123456", "+447911123456"),
    ],
)
def test_valid_phones_become_e164(raw, expected):
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "   ", None, "abc", "123", "06 12 34", "00 00 00 00 00", "pas de téléphone"]
)
def test_unparseable_phones_give_none(raw):
    assert normalise_phone(raw) is None


def test_phone_display_is_national_for_france_and_international_otherwise():
    assert format_phone("+33612345678") == "06 12 34 56 78"
    assert format_phone("+447911123456").startswith("+44 ")
    assert format_phone(None) == ""


@given(st.integers(min_value=10_000_000, max_value=99_999_999))
def test_every_valid_french_mobile_round_trips_through_its_display_form(n):
    e164 = f"+336{n}"
    assume(phonenumbers.is_valid_number(phonenumbers.parse(e164)))
    assert normalise_phone(format_phone(e164)) == e164


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("Jean.Dupont@Exemple.FR", "jean.dupont@exemple.fr"),
        ("  marie@exemple.fr ", "marie@exemple.fr"),
        ("pas-un-email", None),
        ("a@b", None),
        ("", None),
        (None, None),
    ],
)
def test_emails_are_validated_without_dns_and_lower_cased(raw, expected):
    assert normalise_email(raw) == expected


def test_fold_removes_accents_and_case():
    assert fold("Élodie LEFÈVRE") == "elodie lefevre"
    assert search_key("Zoé", None, "Préfecture") == "zoe prefecture"
