"""CSV writing: formula neutralisation, cell texts and chunks (pure functions)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm.services.exports import (
    BOM,
    FORMULA_STARTS,
    cell_text,
    csv_chunks,
    export_phone,
    neutralise,
)


@pytest.mark.parametrize(
    "cell,expected",
    [
        ("=1+1", "'=1+1"),
        ('=HYPERLINK("http://evil.example","clic")', '\'=HYPERLINK("http://evil.example","clic")'),
        ("+33612345678", "'+33612345678"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("\n=1+1", "'\n=1+1"),
        ("=", "'="),
        ("", ""),
        ("Élodie", "Élodie"),
        ("06 12 34 56 78", "06 12 34 56 78"),
        ("a=1", "a=1"),
        (" =1", " =1"),
        ("'=1", "'=1"),
        ("N'Diaye", "N'Diaye"),
        ("contact@exemple.fr", "contact@exemple.fr"),
    ],
)
def test_neutralise(cell, expected):
    assert neutralise(cell) == expected


@given(st.text())
def test_a_neutralised_cell_never_starts_like_a_formula_and_keeps_its_text(cell):
    out = neutralise(cell)
    assert not out.startswith(FORMULA_STARTS)
    assert out in (cell, "'" + cell)


@pytest.mark.parametrize(
    "value,expected",
    [
        (None, ""),
        (True, "oui"),
        (False, "non"),
        (42, "42"),
        (-3, "-3"),  # numbers we produce are numbers, not formulas
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        # Paris time: UTC+1 in winter, UTC+2 in summer.
        (datetime(2026, 3, 3, 8, 0, tzinfo=UTC), "03/03/2026 09:00"),
        (datetime(2026, 7, 14, 22, 30, tzinfo=UTC), "15/07/2026 00:30"),
    ],
)
def test_cell_text(value, expected):
    assert cell_text(value) == expected


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        cell_text(datetime(2026, 3, 3, 8, 0))


@pytest.mark.parametrize(
    "phone,raw,expected",
    [
        ("+33612345678", None, "06 12 34 56 78"),
        ("+262692123456", None, "0692 12 34 56"),
        ("+590690123456", None, "0690 12 34 56"),
        ("+442079460000", None, "+44 20 7946 0000"),
        (None, "12 34", "12 34"),
        (None, None, ""),
    ],
)
def test_export_phone_is_national_for_france(phone, raw, expected):
    assert export_phone(phone, raw) == expected


def test_international_phones_are_still_neutralised_in_a_cell():
    assert cell_text(export_phone("+442079460000", None)) == "'+44 20 7946 0000"


def test_chunks_start_with_the_bom_and_parse_back_with_semicolons():
    rows = [
        ("Élodie", "=1+1", datetime(2026, 3, 3, 8, tzinfo=UTC)),
        ("Zoé; Léa", 'dit "oui"', None),
    ]
    chunks = list(csv_chunks(("prénom", "note", "inscrit le"), rows, chunk_rows=1))
    assert len(chunks) == 3  # one per row, then the (empty) rest
    text = "".join(chunks)
    assert text.startswith(BOM) and text.count(BOM) == 1
    assert "\r\n" in text
    parsed = list(csv.reader(io.StringIO(text[1:]), delimiter=";"))
    assert parsed == [
        ["prénom", "note", "inscrit le"],
        ["Élodie", "'=1+1", "03/03/2026 09:00"],
        ["Zoé; Léa", 'dit "oui"', ""],
    ]


def test_an_empty_export_is_the_header_only():
    assert list(csv_chunks(("a", "b"), [])) == [BOM + "a;b\r\n"]
