"""Reading spreadsheet exports: encodings, separators, records and header guesses."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from crm.services.csv_reading import (
    CsvFileError,
    detect_delimiter,
    detect_encoding,
    inspect_file,
    iter_records,
    split_raw,
)
from crm.services.import_mapping import (
    guess_field,
    guess_mapping,
    mapping_from_names,
    mapping_problems,
)

HEADER = "Prénom;Nom;Téléphone;E-mail;Structure\n"
ROW = "Œdipe;Lefèvre;06 12 34 56 78;oedipe@exemple.fr;Préfecture de l'Hérault\n"


def write(tmp_path: Path, data: bytes, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ((HEADER + ROW).encode("utf-8"), "utf-8-sig"),
        (b"\xef\xbb\xbf" + (HEADER + ROW).encode("utf-8"), "utf-8-sig"),
        ((HEADER + ROW).encode("cp1252"), "cp1252"),
        (b"first_name,email\nAnn,ann@example.org\n", "utf-8-sig"),
    ],
    ids=["utf-8", "utf-8-bom", "cp1252", "ascii"],
)
def test_encoding_is_detected(tmp_path, data, expected):
    path = write(tmp_path, data)
    assert detect_encoding(path) == expected


def test_cp1252_accents_and_ligatures_are_read_back(tmp_path):
    path = write(tmp_path, (HEADER + ROW).encode("cp1252"))
    layout = inspect_file(path)
    assert layout.encoding == "cp1252"
    assert layout.header == ["Prénom", "Nom", "Téléphone", "E-mail", "Structure"]
    assert layout.preview[0][0] == "Œdipe" and layout.preview[0][4] == "Préfecture de l'Hérault"


def test_the_bom_is_not_part_of_the_first_column(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbf" + (HEADER + ROW).encode("utf-8"))
    assert inspect_file(path).header[0] == "Prénom"


def test_a_single_cp1252_byte_far_down_the_file_decides(tmp_path):
    lines = "nom;email\n" + "Martin;martin@exemple.fr\n" * 20_000 + "Hélène;h@exemple.fr\n"
    path = write(tmp_path, lines.encode("cp1252"))
    assert detect_encoding(path) == "cp1252"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image PNG"),
        (b"PK\x03\x04\x14\x00\x06\x00", "classeur Excel"),
        (b"nom;email\x00\x00\x01\x02binaire", "contenu binaire"),
        ("nom;email\n".encode("utf-16"), "contenu binaire"),
    ],
    ids=["png", "xlsx", "nul-bytes", "utf-16"],
)
def test_files_that_are_not_csv_are_refused_in_french(tmp_path, data, message):
    with pytest.raises(CsvFileError, match=message):
        inspect_file(write(tmp_path, data))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "Le fichier est vide."),
        (b"\n\n;;;\n", "Le fichier est vide."),
        (b"\xef\xbb\xbf", "Le fichier est vide."),
        (HEADER.encode(), "qu'une ligne d'en-tête"),
        ((HEADER + "\n;;;;\n\n").encode(), "qu'une ligne d'en-tête"),
    ],
    ids=["empty", "blank-lines", "bom-only", "header-only", "header-and-blank-lines"],
)
def test_empty_files_and_header_only_files_are_refused(tmp_path, data, message):
    with pytest.raises(CsvFileError, match=message):
        inspect_file(write(tmp_path, data))


def test_an_unclosed_quote_swallowing_the_file_is_reported(tmp_path):
    data = 'nom;notes\nMartin;"début\n' + "x" * 200_000 + "\n"
    with pytest.raises(CsvFileError, match="mal formé à partir de la ligne 2"):
        inspect_file(write(tmp_path, data.encode()))


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("prenom,nom,email\nAnn,Lee,a@b.fr\nBob,Ray,b@b.fr\n", ","),
        ("prenom;nom;email\nAnn;Lee;a@b.fr\nBob;Ray;b@b.fr\n", ";"),
        ("prenom\tnom\temail\nAnn\tLee\ta@b.fr\n", "\t"),
        ('nom;notes\n"Lee";"a, b, c"\n"Ray";"d, e"\n', ";"),
        ('nom,notes\n"Lee","a; b; c"\n"Ray","d; e"\n', ","),
        ('nom;notes;email\nLee;"Dupont, Jean";a@b.fr\nRay;"Ray, Bob";b@b.fr\n', ";"),
        ("nom;notes\nLee;a, b, c, d\nRay;e, f, g\n", ";"),
        ("email\na@b.fr\nb@b.fr\n", ";"),
        ("Prénom;Nom;Téléphone\n", ";"),
    ],
    ids=[
        "comma",
        "semicolon",
        "tab",
        "semicolon-with-quoted-commas",
        "comma-with-quoted-semicolons",
        "semicolon-names-with-commas",
        "semicolon-unquoted-commas-in-notes",
        "single-column",
        "header-only",
    ],
)
def test_separator_is_detected(sample, expected):
    assert detect_delimiter(sample) == expected


def test_records_keep_their_first_line_number_and_raw_text():
    text = 'nom;notes\r\n\r\nLee;"deux\r\nlignes"\r\n;;\r\nRay;simple\r\n'
    records = list(iter_records(io.StringIO(text, newline=""), ";"))
    assert [(r.line_number, r.fields) for r in records] == [
        (1, ["nom", "notes"]),
        (3, ["Lee", "deux\r\nlignes"]),
        (6, ["Ray", "simple"]),
    ]
    assert records[1].raw == 'Lee;"deux\r\nlignes"'
    assert split_raw(records[1].raw, ";") == ["Lee", "deux\r\nlignes"]


def test_unnamed_columns_get_their_position(tmp_path):
    layout = inspect_file(write(tmp_path, b"nom;;email\nLee;x;a@b.fr\n"))
    assert layout.header == ["nom", "Colonne 2", "email"]
    assert layout.data_rows == 1 and layout.delimiter == ";"


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Prénom", "first_name"),
        ("PRENOM", "first_name"),
        ("First name", "first_name"),
        ("Nom", "last_name"),
        ("Nom de famille", "last_name"),
        ("Last Name", "last_name"),
        ("Téléphone", "phone"),
        ("Tél.", "phone"),
        ("Portable", "phone"),
        ("Mobile", "phone"),
        ("N° de téléphone portable", "phone"),
        ("Phone", "phone"),
        ("E-mail", "email"),
        ("Email", "email"),
        ("Courriel", "email"),
        ("Adresse e-mail professionnelle", "email"),
        ("Mail", "email"),
        ("Structure", "organisation"),
        ("Organisation", "organisation"),
        ("Nom de la structure", "organisation"),
        ("Établissement", "organisation"),
        ("Fonction", "profile"),
        ("Profil", "profile"),
        ("Poste occupé", "profile"),
        ("Commentaire", "notes"),
        ("Remarques", "notes"),
        ("Code postal", ""),
        ("Ville", ""),
        ("Date de naissance", ""),
        ("Hôtel", ""),
    ],
)
def test_header_guesses(header, field):
    assert guess_field(header)[0] == field


def test_each_field_is_guessed_once_and_the_mobile_wins():
    header = ["Nom", "Prénom", "Téléphone fixe", "Portable", "E-mail", "Mail perso", "Ville"]
    assert guess_mapping(header) == ["last_name", "first_name", "", "phone", "email", "", ""]


def test_mapping_problems_are_explained_in_french():
    header = ["Nom", "Tél 1", "Tél 2"]
    problems = mapping_problems(header, ["last_name", "phone", "phone"])
    assert problems == [
        "Les colonnes « Tél 1 » et « Tél 2 » sont toutes associées à « Téléphone » : "
        "choisissez-en une seule."
    ]
    assert "téléphone ou à l'adresse e-mail" in mapping_problems(header, ["last_name", "", ""])[0]
    assert mapping_problems(header, ["last_name", "phone", ""]) == []


def test_a_mapping_given_by_column_names():
    header = ["Prénom", "Nom", "Tél", "Ville"]
    names = {"prénom": "first_name", "Tél": "phone", "Ville": "ignorer"}
    assert mapping_from_names(header, names) == ["first_name", "", "phone", ""]
    with pytest.raises(ValueError, match="Colonne inconnue"):
        mapping_from_names(header, {"Courriel": "email"})
    with pytest.raises(ValueError, match="Champ inconnu"):
        mapping_from_names(header, {"Tél": "telephone"})
