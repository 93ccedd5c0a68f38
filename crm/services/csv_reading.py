"""Reading the CSV files people export from their spreadsheets, without loading them in memory.

French Excel writes Windows-1252 with semicolons; other tools write UTF-8 (with or without a
byte order mark) with commas. The encoding is detected on the whole file (a single "é" on the
last line decides), the separator on the first lines.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

ENCODINGS = ("utf-8-sig", "cp1252")
ENCODING_LABELS = {"utf-8-sig": "UTF-8", "cp1252": "Windows-1252 (Excel)"}
DELIMITERS = (";", ",", "\t")
DELIMITER_LABELS = {";": "point-virgule", ",": "virgule", "\t": "tabulation"}
MAX_COLUMNS = 100
_CHUNK = 64 * 1024
_SAMPLE_LINES = 20
_SAVE_AS_CSV = (
    "Enregistrez-le depuis votre tableur au format « CSV UTF-8 » ou "
    "« CSV (séparateur : point-virgule) », puis recommencez."
)
_MAGIC = (
    (b"PK\x03\x04", "un classeur Excel ou LibreOffice (.xlsx, .ods)"),
    (b"\xd0\xcf\x11\xe0", "un classeur Excel ancien format (.xls)"),
    (b"\x89PNG", "une image PNG"),
    (b"\xff\xd8\xff", "une image JPEG"),
    (b"GIF8", "une image GIF"),
    (b"%PDF", "un document PDF"),
)


class CsvFileError(ValueError):
    """The file cannot be imported; the message is in French for the interface."""


@dataclass
class Record:
    """One CSV record: where it starts in the file, its text as written, and its fields."""

    line_number: int
    raw: str
    fields: list[str]


@dataclass
class CsvLayout:
    encoding: str
    delimiter: str
    header: list[str]
    data_rows: int
    preview: list[list[str]] = field(default_factory=list)


def detect_encoding(path: Path) -> str:
    """UTF-8 (BOM or not) if the whole file decodes strictly, else Windows-1252."""
    with path.open("rb") as f:
        head = f.read(_CHUNK)
    _refuse_binary(head)
    for encoding in ENCODINGS:
        if _decodes(path, encoding):
            return encoding
    raise CsvFileError("L'encodage du fichier n'est pas reconnu. " + _SAVE_AS_CSV)


def _refuse_binary(head: bytes) -> None:
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            raise CsvFileError(f"Ce fichier est {kind}, pas un fichier CSV. " + _SAVE_AS_CSV)
    if b"\x00" in head:
        raise CsvFileError("Ce fichier n'est pas un fichier CSV (contenu binaire). " + _SAVE_AS_CSV)


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    with path.open("rb") as f:
        try:
            while chunk := f.read(_CHUNK):
                if b"\x00" in chunk:
                    raise CsvFileError(
                        "Ce fichier n'est pas un fichier CSV (contenu binaire). " + _SAVE_AS_CSV
                    )
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def detect_delimiter(sample: str) -> str:
    """Semicolon, comma or tab: csv.Sniffer on the first lines, checked against the header."""
    lines = sample.splitlines()
    header_line = next((line for line in lines if line.strip()), "")
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = None
    widths = {d: len(_first_record(header_line, d)) for d in DELIMITERS}
    if sniffed in widths and (widths[sniffed] > 1 or max(widths.values()) == 1):
        return sniffed
    # Fallback: the separator that splits the header line into the most columns.
    best = max(DELIMITERS, key=lambda d: (widths[d], -DELIMITERS.index(d)))
    return best if widths[best] > 1 else ";"


def _first_record(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter), [])


def open_text(path: Path, encoding: str) -> TextIO:
    """A text stream for csv.reader: newline="" keeps line breaks inside quoted fields."""
    return path.open(encoding=encoding, errors="strict", newline="")


def read_sample(stream: TextIO, max_lines: int = _SAMPLE_LINES) -> str:
    lines = []
    for line in stream:
        lines.append(line)
        if len(lines) >= max_lines:
            break
    return "".join(lines)


class _LineTap:
    """Feeds csv.reader line by line and remembers the lines of the current record."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lines: list[str] = []

    def __iter__(self) -> _LineTap:
        return self

    def __next__(self) -> str:
        line = next(self.stream)
        self.lines.append(line)
        return line

    def take(self) -> str:
        text = "".join(self.lines)
        self.lines.clear()
        return text.rstrip("\r\n")


def is_blank(fields: list[str]) -> bool:
    """An empty line, or one made only of separators (";;;;" as spreadsheets export it)."""
    return not any(value.strip() for value in fields)


def iter_records(stream: TextIO, delimiter: str) -> Iterator[Record]:
    """Every non-blank record, the header included, with its first line number and raw text."""
    tap = _LineTap(stream)
    reader = csv.reader(tap, delimiter=delimiter)
    previous_end = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CsvFileError(
                f"Le fichier CSV est mal formé à partir de la ligne {previous_end + 1} "
                "(un guillemet n'est peut-être pas fermé). " + _SAVE_AS_CSV
            ) from exc
        start, previous_end = previous_end + 1, reader.line_num
        raw = tap.take()
        if not is_blank(fields):
            yield Record(start, raw, fields)


def header_names(fields: list[str]) -> list[str]:
    """Column names as shown on screen: an unnamed column gets its position."""
    return [value.strip() or f"Colonne {i}" for i, value in enumerate(fields, start=1)]


def inspect_file(path: Path, preview_rows: int = 5) -> CsvLayout:
    """Check that the file is an importable CSV and describe it, reading it as a stream."""
    if path.stat().st_size == 0:
        raise CsvFileError("Le fichier est vide.")
    encoding = detect_encoding(path)
    with open_text(path, encoding) as stream:
        delimiter = detect_delimiter(read_sample(stream))
    with open_text(path, encoding) as stream:
        records = iter_records(stream, delimiter)
        first = next(records, None)
        if first is None:
            raise CsvFileError("Le fichier est vide.")
        if len(first.fields) > MAX_COLUMNS:
            raise CsvFileError(
                f"Le fichier compte {len(first.fields)} colonnes : {MAX_COLUMNS} au plus."
            )
        layout = CsvLayout(encoding, delimiter, header_names(first.fields), 0)
        for record in records:
            layout.data_rows += 1
            if len(layout.preview) < preview_rows:
                layout.preview.append(record.fields)
    if layout.data_rows == 0:
        raise CsvFileError(
            "Le fichier ne contient qu'une ligne d'en-tête : aucune personne à importer."
        )
    return layout


def read_preview(path: Path, encoding: str, delimiter: str, rows: int = 5) -> list[list[str]]:
    """The first data rows (after the header) for the mapping page."""
    preview: list[list[str]] = []
    with open_text(path, encoding) as stream:
        records = iter_records(stream, delimiter)
        next(records, None)
        for record in records:
            preview.append(record.fields)
            if len(preview) >= rows:
                break
    return preview


def split_raw(raw: str, delimiter: str) -> list[str]:
    """The fields of a stored raw record (for the rejected rows' CSV)."""
    return next(csv.reader(io.StringIO(raw, newline=""), delimiter=delimiter), [])
