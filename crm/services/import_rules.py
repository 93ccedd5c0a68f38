"""The rules of an import, without the database: one row → created, merged or rejected.

Same normalised phone or same e-mail means the same person, within the file and against the
database. A merge fills empty fields and keeps existing values (crm.services.prospects
.merge_updates), and never gives a person a phone or an e-mail that belongs to someone else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crm.services.prospects import (
    MERGE_FIELDS,
    CleanProspect,
    ProspectError,
    ProspectInput,
    build_search_text,
    clean,
    merge_updates,
)

STATE_FIELDS = (*MERGE_FIELDS, "notes", "phone_raw")
CONTACT_FIELDS = ("phone", "email")


class RowRejected(ValueError):
    """This row cannot be imported; the message (in French) goes to the rejected rows."""


def row_input(fields: list[str], mapping: list[str]) -> ProspectInput:
    """The person described by a row, once its width is checked against the header."""
    width = len(mapping)
    if len(fields) > width and not any(v.strip() for v in fields[width:]):
        fields = fields[:width]  # trailing separators, as some spreadsheets write them
    if len(fields) != width:
        raise RowRejected(
            f"Nombre de colonnes incorrect : {len(fields)} au lieu de {width} "
            "(un séparateur en trop ou un guillemet mal placé ?)."
        )
    # The mapping only names ProspectInput fields (checked before the import starts).
    return ProspectInput(**{f: cell_value(v) for f, v in zip(mapping, fields, strict=True) if f})


def cell_value(raw: str) -> str:
    """A cell's text, without the quote our exports put before formula-looking cells."""
    value = raw.strip()
    if value.startswith("'") and value[1:2] in ("=", "+", "-", "@"):
        return value[1:]
    return value


def clean_row(fields: list[str], mapping: list[str]) -> CleanProspect:
    """Normalise a row; an unreadable e-mail next to a good phone is kept in the notes."""
    data = row_input(fields, mapping)
    try:
        cleaned = clean(data)
    except ProspectError as exc:
        raise RowRejected(str(exc)) from exc
    if data.email and cleaned.email is None:
        note = f"Adresse e-mail illisible à l'import : {data.email}"
        cleaned.notes = f"{cleaned.notes}\n{note}".strip()
    return cleaned


@dataclass
class Person:
    """A prospect as the batch sees it: from the database (`id`) or new in this batch."""

    values: dict[str, Any]
    id: int | None = None
    allows: dict[str, bool] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)

    @property
    def is_new(self) -> bool:
        return self.id is None

    def row(self) -> dict[str, Any]:
        """The values to insert (new) or the changed values to update (existing)."""
        names = STATE_FIELDS if self.is_new else sorted(self.changed)
        row = {name: self.values.get(name) for name in names}
        row["search_text"] = build_search_text(self.values)
        return row


@dataclass
class Outcome:
    person: Person
    created: bool
    filled: list[str]


class BatchPlan:
    """Matches the rows of one batch against the known people and against each other."""

    def __init__(self, known: Iterable[Mapping[str, Any]] = ()) -> None:
        self.people: list[Person] = []
        self._owners: dict[tuple[str, str], Person] = {}
        for values in known:
            allows = {k[6:]: bool(v) for k, v in values.items() if k.startswith("allow_")}
            state = {name: values.get(name) for name in STATE_FIELDS}
            self._remember(Person(state, id=values["id"], allows=allows))

    def _remember(self, person: Person) -> None:
        self.people.append(person)
        self._own(person, CONTACT_FIELDS)

    def _own(self, person: Person, names: Iterable[str]) -> None:
        for name in names:
            value = person.values.get(name)
            if value:
                self._owners.setdefault((name, value), person)

    def match(self, cleaned: CleanProspect) -> Person | None:
        """Phone first, then e-mail, as crm.services.prospects.find_existing does."""
        for name in CONTACT_FIELDS:
            value = getattr(cleaned, name)
            if value and (name, value) in self._owners:
                return self._owners[(name, value)]
        return None

    def add(self, cleaned: CleanProspect) -> Outcome:
        incoming = {name: getattr(cleaned, name) for name in STATE_FIELDS}
        person = self.match(cleaned)
        if person is None:
            person = Person(incoming)
            self._remember(person)
            return Outcome(person, created=True, filled=[])
        updates = merge_updates(person.values, incoming)
        for name in CONTACT_FIELDS:
            owner = self._owners.get((name, updates.get(name)))  # type: ignore[arg-type]
            if owner is not None and owner is not person:
                del updates[name]
        person.values.update(updates)
        if not person.is_new:
            person.changed.update(updates)
        self._own(person, [n for n in CONTACT_FIELDS if n in updates])
        return Outcome(person, created=False, filled=sorted(updates))

    def new_people(self) -> list[Person]:
        return [p for p in self.people if p.is_new]

    def changed_people(self) -> list[Person]:
        return [p for p in self.people if not p.is_new and p.changed]
