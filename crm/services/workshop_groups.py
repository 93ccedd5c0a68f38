"""A lab's workshop groups in the database: who is grouped, forming the groups, moving a
person by hand, the target size and the CSV export. The split itself is the pure function
crm.services.grouping.split_into_groups; every change writes an Event.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import contains_eager

from crm.extensions import db
from crm.models import Event, Lab, Prospect, Registration, User
from crm.models.registration import REGISTRATION_STATUS_LABELS
from crm.services import audit
from crm.services.exports import csv_chunks
from crm.services.grouping import MAX_SIZE, MIN_SIZE, Member, split_into_groups
from crm.services.permissions import managers_only
from crm.timeutil import to_local

# On the day, the people checked in are grouped; before, the confirmed ones.
PRESENT, CONFIRMED = "attended", "confirmed"
EXPORT_HEADER = ("groupe", "prénom", "nom", "structure", "profil")


class GroupError(ValueError):
    """A refused change to the groups; the message is in French for the interface."""


@dataclass
class GroupMember:
    registration_id: int
    prospect_id: int
    first_name: str
    last_name: str
    full_name: str
    organisation: str
    profile: str
    status: str

    @property
    def status_label(self) -> str:
        return REGISTRATION_STATUS_LABELS[self.status]


@dataclass
class WorkshopGroup:
    number: int
    members: list[GroupMember] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def within_bounds(self) -> bool:
        return MIN_SIZE <= self.size <= MAX_SIZE


@dataclass
class GroupsPage:
    """What the groups page shows: the basis, the groups, and the participants without one."""

    basis: str  # PRESENT or CONFIRMED
    participants: int
    groups: list[WorkshopGroup]
    ungrouped: list[GroupMember]

    @property
    def next_number(self) -> int:
        return max((g.number for g in self.groups), default=0) + 1


def basis(lab: Lab) -> str:
    """Whom the groups are made of: PRESENT once someone is checked in, else CONFIRMED."""
    present = sa.select(Registration.id).where(
        Registration.lab_id == lab.id, Registration.status == PRESENT
    )
    return PRESENT if db.session.scalar(present.limit(1)) is not None else CONFIRMED


@managers_only
def make_groups(lab: Lab, actor: User | None, replace: bool = False) -> str | None:
    """Split the lab's participants into groups and save each one's group_no (clearing it for
    everyone else). Existing groups are only replaced when `replace` says the manager agreed,
    since moves made by hand are lost. Returns the warning to show, if any; the caller commits.
    """
    if not replace and has_groups(lab):
        raise GroupError(
            "Des groupes existent déjà : cochez la case de confirmation pour les remplacer "
            "(les déplacements faits à la main seront perdus)."
        )
    chosen = basis(lab)
    participants = _registrations(lab, chosen)
    grouping = split_into_groups(
        [
            Member(r.id, r.prospect.organisation or "", r.prospect.profile or "")
            for r in participants
        ],
        lab.group_size,
    )
    number_of = {rid: n for n, ids in enumerate(grouping.groups, start=1) for rid in ids}
    grouped_before = sa.select(Registration).where(
        Registration.lab_id == lab.id, Registration.group_no.is_not(None)
    )
    for registration in [*participants, *db.session.scalars(grouped_before)]:
        wanted = number_of.get(registration.id)
        if registration.group_no != wanted:
            registration.group_no = wanted
    db.session.flush()
    _event(
        "groups.made",
        lab,
        actor,
        data={
            "basis": chosen,
            "target_size": lab.group_size,
            "sizes": [len(ids) for ids in grouping.groups],
        },
        reason=grouping.warning or "",
    )
    return grouping.warning


@managers_only
def move(lab: Lab, registration_id: int, group_no: int, actor: User | None) -> Registration:
    """Move one person to an existing group, or to a new one (the next number), by hand.
    A participant without a group yet (checked in after the groups were made) can be placed
    the same way. The caller commits."""
    registration = db.session.get(Registration, registration_id)
    if registration is None or registration.lab_id != lab.id:
        raise GroupError("Cette personne n'est pas inscrite à cet open lab.")
    if registration.group_no is None and registration.status != basis(lab):
        raise GroupError(
            "Cette personne n'est dans aucun groupe et ne fait pas partie des participants "
            "à répartir."
        )
    numbers = group_numbers(lab)
    if not numbers:
        raise GroupError("Formez d'abord les groupes.")
    new = max(numbers) + 1
    if group_no not in numbers and group_no != new:
        existing = ", ".join(str(n) for n in sorted(numbers))
        raise GroupError(
            f"Le groupe {group_no} n'existe pas : choisissez le groupe {existing}, "
            f"ou {new} pour un nouveau groupe."
        )
    previous = registration.group_no
    if previous == group_no:
        return registration
    registration.group_no = group_no
    db.session.flush()
    _event(
        "groups.moved",
        lab,
        actor,
        registration=registration,
        data={"from": previous, "to": group_no},
    )
    return registration


@managers_only
def set_group_size(lab: Lab, size: int, actor: User | None) -> None:
    """The target size of the next split (5 to 10). The caller commits."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise GroupError(
            f"La taille cible doit être comprise entre {MIN_SIZE} et {MAX_SIZE} personnes."
        )
    if size != lab.group_size:
        previous, lab.group_size = lab.group_size, size
        db.session.flush()
        _event("groups.size_changed", lab, actor, data={"from": previous, "to": size})


def has_groups(lab: Lab) -> bool:
    query = sa.select(Registration.id).where(
        Registration.lab_id == lab.id, Registration.group_no.is_not(None)
    )
    return db.session.scalar(query.limit(1)) is not None


def group_numbers(lab: Lab) -> set[int]:
    query = sa.select(Registration.group_no).where(
        Registration.lab_id == lab.id, Registration.group_no.is_not(None)
    )
    return set(db.session.scalars(query.distinct()))


def groups_for(lab: Lab) -> GroupsPage:
    """The groups with their people (by name), and the participants without a group."""
    chosen = basis(lab)
    query = (
        sa.select(Registration)
        .join(Prospect, Prospect.id == Registration.prospect_id)
        .options(contains_eager(Registration.prospect))
        .where(
            Registration.lab_id == lab.id,
            sa.or_(Registration.group_no.is_not(None), Registration.status == chosen),
        )
        .order_by(Prospect.last_name, Prospect.first_name, Registration.id)
    )
    groups: dict[int, WorkshopGroup] = {}
    ungrouped: list[GroupMember] = []
    participants = 0
    for registration in db.session.scalars(query):
        participants += registration.status == chosen
        member = _member(registration)
        if registration.group_no is None:
            ungrouped.append(member)
        else:
            number = registration.group_no
            groups.setdefault(number, WorkshopGroup(number)).members.append(member)
    return GroupsPage(
        chosen, participants, sorted(groups.values(), key=lambda g: g.number), ungrouped
    )


def export_rows(lab: Lab) -> Iterator[tuple[Any, ...]]:
    for group in groups_for(lab).groups:
        for m in group.members:
            yield (group.number, m.first_name, m.last_name, m.organisation, m.profile)


def export(lab: Lab) -> Iterator[str]:
    """The groups as CSV for Excel (semicolons, BOM, no formula: crm.services.exports)."""
    return csv_chunks(EXPORT_HEADER, export_rows(lab))


def export_filename(lab: Lab) -> str:
    local = to_local(lab.starts_at)
    assert local is not None
    return f"open-lab-{lab.id}-{local:%Y-%m-%d}-groupes.csv"


def record_export(lab: Lab, actor: User | None) -> None:
    """Keep a trace of who exported the names (the caller commits): the lab's timeline and
    the audit trail."""
    _event("groups.exported", lab, actor)
    audit.record("list.exported", "lab", lab.id, {"liste": "groupes d'atelier"})


def _registrations(lab: Lab, status: str) -> list[Registration]:
    query = (
        sa.select(Registration)
        .join(Prospect, Prospect.id == Registration.prospect_id)
        .options(contains_eager(Registration.prospect))
        .where(Registration.lab_id == lab.id, Registration.status == status)
        .order_by(Registration.id)
    )
    return list(db.session.scalars(query))


def _member(registration: Registration) -> GroupMember:
    person = registration.prospect
    return GroupMember(
        registration_id=registration.id,
        prospect_id=person.id,
        first_name=person.first_name,
        last_name=person.last_name,
        full_name=person.full_name,
        organisation=person.organisation or "",
        profile=person.profile or "",
        status=registration.status,
    )


def _event(
    kind: str,
    lab: Lab,
    actor: User | None,
    registration: Registration | None = None,
    data: dict[str, Any] | None = None,
    reason: str = "",
) -> None:
    db.session.add(
        Event(
            kind=kind,
            lab_id=lab.id,
            actor_id=actor.id if actor else None,
            registration_id=registration.id if registration else None,
            prospect_id=registration.prospect_id if registration else None,
            reason=reason,
            data=data or {},
        )
    )
