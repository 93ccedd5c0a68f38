"""Open labs and sources: creation, update, series checks and registration counts. What the
lab page shows (gauges, people per status, waiting list, no-show rate) is
crm.services.lab_overview."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import sqlalchemy as sa

from crm.extensions import db
from crm.models import Event, Lab, Prospect, Registration, Source, User
from crm.models.lab import LAB_STATUSES
from crm.models.registration import REGISTRATION_STATUSES
from crm.services.permissions import managers_only
from crm.timeutil import BAD_YEAR, FIRST_YEAR, LAST_YEAR, format_local, from_local, to_local

# People who said yes to the lab: still confirmed, or already seen on the day (present or not).
CONFIRMED_STATUSES = ("confirmed", "attended", "no_show")
# The next lab of a series usually takes place one to two months later.
SERIES_MIN_DAYS = 28
SERIES_MAX_DAYS = 62
# An offered place stays reserved at most a week: longer, the lab would be near before the
# next person on the list is asked.
MAX_OFFER_HOURS = 168
# Open labs gather 30 to 250 people: the bound only keeps a typing slip (or a value past the
# database's integer) from reaching the commit.
MAX_LAB_SIZE = 10_000
CAPACITY_RANGE = "La capacité doit être comprise entre 1 et 10 000 places."
TARGET_RANGE = "L'objectif doit être compris entre 1 et 10 000 participants."
OFFER_HOURS_RANGE = (
    "La durée de réservation doit être comprise entre 1 et 168 heures (une semaine)."
)
LAB_FIELDS = (
    "title",
    "problem",
    "venue",
    "starts_at",
    "ends_at",
    "capacity",
    "target",
    "status",
    "next_lab_id",
    "overbooking",
    "offer_hours",
)


class LabError(ValueError):
    """Bad lab or source data; `field` names the form field, the message is in French."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class LabInput:
    """A lab as typed in the form: one day, start and end times in local (Paris) time."""

    title: str
    day: date
    start: time
    end: time
    problem: str = ""
    venue: str = ""
    capacity: int = 40
    target: int = 30
    status: str = "draft"
    next_lab_id: int | None = None
    overbooking: int = 0
    offer_hours: int = 24

    @classmethod
    def from_lab(cls, lab: Lab) -> LabInput:
        start, end = to_local(lab.starts_at), to_local(lab.ends_at)
        assert start is not None and end is not None
        return cls(
            title=lab.title,
            day=start.date(),
            start=start.time().replace(tzinfo=None),
            end=end.time().replace(tzinfo=None),
            problem=lab.problem,
            venue=lab.venue,
            capacity=lab.capacity,
            target=lab.target,
            status=lab.status,
            next_lab_id=lab.next_lab_id,
            overbooking=lab.overbooking,
            offer_hours=lab.offer_hours,
        )

    def starts_at(self) -> datetime:
        return from_local(datetime.combine(self.day, self.start))

    def ends_at(self) -> datetime:
        return from_local(datetime.combine(self.day, self.end))


def check_lab(data: LabInput, lab_id: int | None = None) -> None:
    """Raise LabError on the first refused value (the form validates the same rules)."""
    if not data.title.strip():
        raise LabError("Saisissez le titre de l'open lab.", "title")
    if len(data.title.strip()) > 200:
        raise LabError("Le titre ne doit pas dépasser 200 caractères.", "title")
    if not FIRST_YEAR <= data.day.year <= LAST_YEAR:
        raise LabError(BAD_YEAR, "day")
    if data.end <= data.start:
        raise LabError("L'heure de fin doit être après l'heure de début, le même jour.", "end")
    if not 1 <= data.capacity <= MAX_LAB_SIZE:
        raise LabError(CAPACITY_RANGE, "capacity")
    if not 1 <= data.target <= MAX_LAB_SIZE:
        raise LabError(TARGET_RANGE, "target")
    if data.overbooking < 0:
        raise LabError("La marge de surréservation ne peut pas être négative.", "overbooking")
    if data.overbooking > data.capacity:
        raise LabError(overbooking_too_high(data.capacity), "overbooking")
    if not 1 <= data.offer_hours <= MAX_OFFER_HOURS:
        raise LabError(OFFER_HOURS_RANGE, "offer_hours")
    if data.status not in LAB_STATUSES:
        raise LabError("Statut inconnu.", "status")
    if data.next_lab_id is not None:
        if lab_id is not None and data.next_lab_id == lab_id:
            raise LabError("Un open lab ne peut pas être la suite de lui-même.", "next_lab_id")
        if db.session.get(Lab, data.next_lab_id) is None:
            raise LabError("L'open lab suivant choisi n'existe pas.", "next_lab_id")


def overbooking_too_high(capacity: int) -> str:
    return (
        "La marge de surréservation ne peut pas dépasser la capacité du lieu "
        f"({capacity} place{'s' if capacity > 1 else ''})."
    )


@managers_only
def create_lab(data: LabInput, actor: User | None) -> tuple[Lab, list[str]]:
    """Create the lab (the caller commits): (lab, warnings to show)."""
    check_lab(data)
    lab = Lab()
    _apply(lab, data)
    db.session.add(lab)
    db.session.flush()
    _event("lab.created", lab, actor, {"title": lab.title})
    return lab, lab_warnings(lab)


@managers_only
def update_lab(lab: Lab, data: LabInput, actor: User | None) -> list[str]:
    """Update the lab (the caller commits): the warnings to show."""
    check_lab(data, lab.id)
    if data.status == "done" and lab.status != "done":
        # Closing does what "Terminé" means: no-shows noted, thank-you, next-lab invitations.
        raise LabError(
            "Pour terminer l'open lab, utilisez « Clore l'open lab » sur la page « Après le "
            "lab » : les absents y sont notés et les présents remerciés et invités au suivant.",
            "status",
        )
    before = {name: getattr(lab, name) for name in LAB_FIELDS}
    _apply(lab, data)
    changed = sorted(name for name in LAB_FIELDS if getattr(lab, name) != before[name])
    if changed:
        db.session.flush()
        _event("lab.updated", lab, actor, {"changed": changed})
    return lab_warnings(lab)


def _apply(lab: Lab, data: LabInput) -> None:
    lab.title = data.title.strip()
    lab.problem = data.problem.strip()
    lab.venue = data.venue.strip()
    lab.starts_at = data.starts_at()
    lab.ends_at = data.ends_at()
    lab.capacity = data.capacity
    lab.target = data.target
    lab.status = data.status
    lab.next_lab_id = data.next_lab_id
    lab.overbooking = data.overbooking
    lab.offer_hours = data.offer_hours


def lab_warnings(lab: Lab) -> list[str]:
    """What looks unusual but is allowed: a series gap outside one to two months, a big target."""
    warnings = []
    if lab.target > lab.capacity:
        warnings.append(
            f"L'objectif ({lab.target} participants) dépasse la capacité du lieu "
            f"({lab.capacity} places)."
        )
    next_lab = db.session.get(Lab, lab.next_lab_id) if lab.next_lab_id else None
    if next_lab is not None:
        # Calendar days in Paris: a change to summer time must not shorten the gap.
        this_day, next_day = to_local(lab.starts_at), to_local(next_lab.starts_at)
        assert this_day is not None and next_day is not None
        days = (next_day.date() - this_day.date()).days
        when = format_local(next_lab.starts_at)
        if next_lab.starts_at <= lab.starts_at:
            warnings.append(
                f"L'open lab suivant « {next_lab.title} » a lieu le {when}, "
                "avant celui-ci : vérifiez la série."
            )
        elif not SERIES_MIN_DAYS <= days <= SERIES_MAX_DAYS:
            warnings.append(
                f"L'open lab suivant « {next_lab.title} » a lieu le {when}, "
                f"{days} jours plus tard : d'habitude, le suivant a lieu un à deux mois après."
            )
    return warnings


def lab_when(lab: Lab) -> str:
    """'mardi 3 mars 2026, de 09:00 à 13:00' (Paris time)."""
    start, end = to_local(lab.starts_at), to_local(lab.ends_at)
    if start is None or end is None:
        return ""
    day = format_local(lab.starts_at, with_day=True).rsplit(" à ", 1)[0]
    return f"{day}, de {start:%H:%M} à {end:%H:%M}"


def next_lab_choices(exclude_id: int | None = None) -> list[tuple[int, str]]:
    """The labs a lab may point to as the next of its series (never itself)."""
    query = sa.select(Lab).order_by(Lab.starts_at.desc(), Lab.id.desc())
    if exclude_id is not None:
        query = query.where(Lab.id != exclude_id)
    return [
        (lab.id, f"{lab.title} — {format_local(lab.starts_at)}")
        for lab in db.session.scalars(query)
    ]


def previous_labs(lab: Lab) -> list[Lab]:
    """The labs whose next lab is this one."""
    query = sa.select(Lab).where(Lab.next_lab_id == lab.id).order_by(Lab.starts_at)
    return list(db.session.scalars(query))


def status_counts(lab_id: int) -> dict[str, int]:
    """Registrations of the lab per status, every status present (0 when none)."""
    rows = db.session.execute(
        sa.select(Registration.status, sa.func.count())
        .where(Registration.lab_id == lab_id)
        .group_by(Registration.status)
    ).all()
    found = {status: count for status, count in rows}
    return {status: found.get(status, 0) for status in REGISTRATION_STATUSES}


def confirmed_counts(lab_ids: list[int]) -> dict[int, int]:
    """Confirmed participants per lab, in one grouped query."""
    if not lab_ids:
        return {}
    rows = db.session.execute(
        sa.select(Registration.lab_id, sa.func.count())
        .where(Registration.lab_id.in_(lab_ids), Registration.status.in_(CONFIRMED_STATUSES))
        .group_by(Registration.lab_id)
    ).all()
    found = {lab_id: count for lab_id, count in rows}
    return {lab_id: found.get(lab_id, 0) for lab_id in lab_ids}


def sources_with_counts() -> list[tuple[Source, int]]:
    """Every source with its number of prospects, in one grouped query."""
    counts = (
        sa.select(Prospect.source_id, sa.func.count().label("n"))
        .group_by(Prospect.source_id)
        .subquery()
    )
    query = (
        sa.select(Source, sa.func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.source_id == Source.id)
        .order_by(sa.func.lower(Source.name))
    )
    return [(source, count) for source, count in db.session.execute(query).all()]


def save_source(source: Source | None, name: str, description: str) -> Source:
    """Create (source=None) or update a source; its name is unique whatever the case."""
    name = " ".join(name.split())
    if not name:
        raise LabError("Saisissez le nom de la source.", "name")
    if len(name) > 120:
        raise LabError("Le nom ne doit pas dépasser 120 caractères.", "name")
    duplicate = sa.select(Source.id).where(sa.func.lower(Source.name) == name.lower())
    if source is not None and source.id is not None:
        duplicate = duplicate.where(Source.id != source.id)
    if db.session.scalar(duplicate) is not None:
        raise LabError(f"Une source s'appelle déjà « {name} » : choisissez un autre nom.", "name")
    if source is None:
        source = Source()
        db.session.add(source)
    source.name = name
    source.description = description.strip()
    db.session.flush()
    return source


def _event(kind: str, lab: Lab, actor: User | None, data: dict[str, Any]) -> None:
    db.session.add(Event(kind=kind, lab_id=lab.id, actor_id=actor.id if actor else None, data=data))
