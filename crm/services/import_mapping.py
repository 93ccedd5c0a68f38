"""Which column of an imported file goes to which prospect field: guesses and checks."""

from __future__ import annotations

import re
from collections.abc import Mapping

from crm.services.normalise import fold

FIELDS = ("first_name", "last_name", "phone", "email", "organisation", "profile", "notes")
FIELD_LABELS = {
    "first_name": "Prénom",
    "last_name": "Nom",
    "phone": "Téléphone",
    "email": "Adresse e-mail",
    "organisation": "Structure",
    "profile": "Profil / fonction",
    "notes": "Notes",
}
IGNORE = ""
IGNORE_LABEL = "Ignorer cette colonne"
_IGNORE_WORDS = {"", "ignorer", "ignore", "aucun", "none"}

# Whole header names (folded: lower case, no accents, punctuation as spaces).
_EXACT: dict[str, set[str]] = {
    "first_name": {"prenom", "prenoms", "first name", "firstname", "given name", "forename"},
    "last_name": {
        "nom",
        "nom de famille",
        "nom d usage",
        "last name",
        "lastname",
        "surname",
        "family name",
        "name",
    },
    "phone": {
        "telephone",
        "tel",
        "portable",
        "mobile",
        "phone",
        "numero",
        "gsm",
        "cell",
        "phone number",
        "numero de telephone",
        "n telephone",
        "num tel",
    },
    "email": {
        "e mail",
        "email",
        "mail",
        "courriel",
        "mel",
        "adresse mail",
        "adresse e mail",
        "adresse email",
        "adresse electronique",
        "email address",
    },
    "organisation": {
        "structure",
        "organisation",
        "organization",
        "organisme",
        "etablissement",
        "entreprise",
        "societe",
        "company",
        "employeur",
        "administration",
        "collectivite",
        "service",
    },
    "profile": {"fonction", "profil", "poste", "metier", "role", "job title", "profession"},
    "notes": {
        "commentaire",
        "commentaires",
        "remarque",
        "remarques",
        "note",
        "notes",
        "observation",
        "observations",
        "comment",
        "comments",
    },
}
# Words found inside a longer header ("Téléphone portable", "Nom de la structure"), in order
# of precedence: "Nom de la structure" is an organisation before it is a name.
_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("first_name", ("prenom", "prenoms", "firstname", "first", "given")),
    ("email", ("mail", "email", "courriel")),
    ("phone", ("telephone", "tel", "portable", "mobile", "phone", "gsm")),
    (
        "organisation",
        ("structure", "organisation", "organization", "organisme", "etablissement", "entreprise"),
    ),
    ("profile", ("fonction", "profil", "poste", "metier", "job")),
    ("notes", ("commentaire", "commentaires", "comment", "remarque", "remarques", "notes")),
    ("last_name", ("nom", "name", "surname", "lastname")),
)
_MOBILE_WORDS = {"portable", "mobile", "gsm", "cell", "sms"}


def _words(header: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", fold(header)).split())


def guess_field(header: str) -> tuple[str, int]:
    """The field a header names and how sure we are (3 exact, 2 a word of it, 0 nothing)."""
    folded = _words(header)
    for name, names in _EXACT.items():
        if folded in names:
            return name, 3
    tokens = set(folded.split())
    for name, words in _WORDS:
        if tokens & set(words):
            return name, 2
    return IGNORE, 0


def guess_mapping(header: list[str]) -> list[str]:
    """One field per column, each field used once: the surest column wins, then the first.

    Among several phone columns the mobile one wins, since it can receive text messages.
    """
    candidates = []
    for index, name in enumerate(header):
        field, score = guess_field(name)
        if field == "phone" and set(_words(name).split()) & _MOBILE_WORDS:
            score += 2
        if field:
            candidates.append((-score, index, field))
    mapping = [IGNORE] * len(header)
    taken: set[str] = set()
    for _, index, field in sorted(candidates):
        if field not in taken:
            mapping[index] = field
            taken.add(field)
    return mapping


def mapping_problems(header: list[str], mapping: list[str]) -> list[str]:
    """What prevents this mapping from being used, in French (empty when it is fine)."""
    problems = []
    if len(mapping) != len(header):
        return ["La correspondance ne couvre pas toutes les colonnes du fichier."]
    unknown = sorted({f for f in mapping if f and f not in FIELDS})
    if unknown:
        problems.append(f"Champ inconnu : {', '.join(unknown)}.")
    for field in FIELDS:
        columns = [header[i] for i, f in enumerate(mapping) if f == field]
        if len(columns) > 1:
            listed = " et ".join(f"« {c} »" for c in columns)
            problems.append(
                f"Les colonnes {listed} sont toutes associées à « {FIELD_LABELS[field]} » : "
                "choisissez-en une seule."
            )
    if "phone" not in mapping and "email" not in mapping:
        problems.append(
            "Associez une colonne au téléphone ou à l'adresse e-mail : sans eux, "
            "personne ne pourrait être contacté."
        )
    return problems


def mapping_from_names(header: list[str], names: Mapping[str, str]) -> list[str]:
    """A mapping given as {column header: field} (the CLI); columns not named are ignored."""
    by_header = {_words(name): i for i, name in enumerate(header)}
    mapping = [IGNORE] * len(header)
    for column, field in names.items():
        index = by_header.get(_words(str(column)))
        if index is None:
            raise ValueError(
                f"Colonne inconnue dans la correspondance : « {column} ». "
                f"Colonnes du fichier : {', '.join(header)}."
            )
        value = str(field or "").strip()
        if value.lower() in _IGNORE_WORDS:
            continue
        if value not in FIELDS:
            raise ValueError(
                f"Champ inconnu pour la colonne « {column} » : « {value} ». "
                f"Champs possibles : {', '.join(FIELDS)} ou « ignorer »."
            )
        mapping[index] = value
    return mapping
