"""Fuzzing the functions that read what strangers write: any input gives a clear result or a
clear French error, never an exception. Bounded so that CI stays fast."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.security import mask_personal_data
from crm.services.csv_reading import CsvFileError, inspect_file, iter_records, open_text
from crm.services.import_mapping import guess_mapping, mapping_problems
from crm.services.import_rules import RowRejected, clean_row
from crm.services.normalise import normalise_phone
from crm.services.reply_parser import Reply, understand

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
E164 = re.compile(r"\+[1-9][0-9]{6,14}")

# Text that looks like what people type: words of the parser's lexicon, digits, emoji, accents.
WORDS = st.sampled_from(
    [
        "oui",
        "OUI",
        "non",
        "Stop",
        "STOP",
        "arrêt",
        "je",
        "viens",
        "pas",
        "peut-être",
        "merci",
        "présent",
        "désinscription",
        "!",
        "?",
        "👍",
        "😀",
        "\n",
        "  ",
        "0612345678",
        "+33",
        "é",
    ]
)
HUMAN_TEXT = st.one_of(st.text(), st.lists(WORDS, max_size=12).map(" ".join))


@FAST
@given(HUMAN_TEXT)
def test_the_reply_parser_understands_any_text(text):
    assert isinstance(understand(text), Reply)


PHONE_LIKE = st.one_of(
    st.text(),
    st.text(alphabet="0123456789 +-.()/", max_size=30),
    st.from_regex(r"(\+33|0033|0)[1-9]([ .-]?[0-9]{2}){4}", fullmatch=True),
    st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True),
)


@FAST
@given(PHONE_LIKE)
def test_the_phone_normaliser_gives_e164_or_none(text):
    result = normalise_phone(text)
    assert result is None or E164.fullmatch(result), result
    if result is not None:
        assert normalise_phone(result) == result  # E.164 stays itself


@FAST
@given(st.from_regex(r"0(6[0-2]|7[5-8])[0-9]([ .]?[0-9]{2}){3}", fullmatch=True))
def test_every_french_mobile_is_understood(text):
    """Metropolitan mobile ranges (06 shares some prefixes with the overseas departments,
    partly unallocated: those are left to the table tests)."""
    assert normalise_phone(text) == "+33" + re.sub(r"\D", "", text)[1:]


@FAST
@given(st.text())
def test_log_masking_never_raises_and_leaves_no_mobile(text):
    masked = mask_personal_data(text)
    assert isinstance(masked, str)
    assert not re.search(r"(?<![\d+])0[67]\d{8}(?!\d)", masked)


def _csv_like() -> st.SearchStrategy[bytes]:
    cell = st.one_of(
        st.text(max_size=12),
        st.sampled_from(["Prénom", "Nom", "Téléphone", "E-mail", "06 12 34 56 78", '"', "'=1"]),
    )
    row = st.lists(cell, min_size=1, max_size=6)
    sep = st.sampled_from([";", ",", "\t", "|"])
    encoding = st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16"])
    end = st.sampled_from(["\n", "\r\n", "\r"])

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        s, e = draw(sep), draw(end)
        text = e.join(s.join(r) for r in draw(st.lists(row, max_size=6)))
        return text.encode(draw(encoding), errors="replace")

    return st.one_of(st.binary(max_size=400), build())


@FAST
@given(_csv_like())
def test_the_csv_importer_reads_any_bytes_or_says_why_in_french(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "liste.csv"
        path.write_bytes(data)
        try:
            layout = inspect_file(path)
        except CsvFileError as error:
            assert str(error) and str(error)[0].isupper()
            return
        mapping = guess_mapping(layout.header)
        assert len(mapping) == len(layout.header)
        assert all(isinstance(p, str) for p in mapping_problems(layout.header, mapping))
        with open_text(path, layout.encoding) as stream:
            records = iter_records(stream, layout.delimiter)
            next(records, None)  # the header
            for record in records:
                try:
                    clean_row(record.fields, mapping)
                except RowRejected as error:
                    assert str(error)
