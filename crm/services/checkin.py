"""Check-in on the lab day: mark people present, undo a mis-tap, search, count, walk-ins.

Statuses change only through crm.services.registrations.transition (which writes the event);
this module adds the check-in time and what presence means for the follow-ups.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import sqlalchemy as sa
from sqlalchemy.orm import contains_eager

from crm.extensions import db
from crm.models import Lab, Prospect, Registration, Source, User
from crm.services import followups, lab_day, prospects, registrations
from crm.services.normalise import fold, normalise_email, normalise_phone
from crm.timeutil import format_local, format_local_time, utcnow

WALK_IN_SOURCE = "Sur place"
CHECK_IN_REASON = "Accueil le jour du lab"
UNDO_REASON = "Accueil : présence annulée (erreur de pointage)"
WALK_IN_REASON = "Venu·e sans inscription : inscrit·e sur place"
BAD_PHONE = "Numéro de téléphone invalide : saisissez par exemple 06 12 34 56 78."
BAD_EMAIL = "Adresse e-mail invalide : saisissez par exemple nom@exemple.fr."
# Search order: the people expected first, then the others invited (anyone may turn up), then
# those who said no, and last the people out of scope (shown so that nobody re-registers them).
SEARCH_RANKS = {
    "confirmed": 0,
    "waitlisted": 0,
    "attended": 0,
    "to_contact": 1,
    "contacted": 1,
    "interested": 1,
    "declined": 2,
    "cancelled": 2,
    "no_show": 2,
    "disqualified": 3,
}
# Presence makes the invitation and the reminders pointless (the thank-you sequence is left
# to the after-lab service).
STOPPED_KINDS = ("invitation", "reminders")


class CheckInError(ValueError):
    """A check-in that cannot be done; `field` names a form field, the message is in French."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class CheckInResult:
    """What a tap did: `changed` is False when nothing had to change (already present)."""

    registration: Registration
    changed: bool
    message: str


# check_in or undo, as the view calls them.
Action = Callable[[Registration, User | None], CheckInResult]


@dataclass
class Counts:
    """present: checked in (attended); expected: confirmed + attended, so a walk-in counts in
    both and the count reads "present out of the people we expect, walk-ins included"."""

    present: int
    expected: int


@dataclass
class SearchResult:
    registrations: list[Registration]
    more: bool  # more people match than shown: the search should be narrowed


@dataclass
class WalkIn:
    """A person registered at the desk, as typed; phone and e-mail are optional."""

    first_name: str
    last_name: str
    organisation: str = ""
    phone: str = ""
    email: str = ""
    # Agreed aloud at the desk: to be invited to the next labs by these channels.
    consents: tuple[str, ...] = ()


@dataclass
class WalkInResult:
    check: CheckInResult
    prospect_created: bool


def check_in(registration: Registration, actor: User | None) -> CheckInResult:
    """Mark the person present (the caller commits); already present is a no-op that says so."""
    name = registration.prospect.full_name
    if registration.status == "attended":
        return CheckInResult(registration, False, already_message(registration))
    if "attended" not in registrations.TRANSITIONS[registration.status]:
        raise CheckInError(
            f"{name} est « {registration.status_label} » pour cet open lab : impossible de "
            "l'enregistrer présent·e. Voyez avec un·e responsable."
        )
    lab = registration.lab
    if not registrations.lab_day_begun(lab, utcnow()):  # the same rule as the prospect page
        raise CheckInError(
            f"L'accueil ouvre le jour de l'open lab ({format_local(lab.starts_at)}) : "
            "personne ne peut être enregistré·e présent·e avant."
        )
    registrations.transition(registration, "attended", actor, CHECK_IN_REASON)
    registration.checked_in_at = utcnow()
    registration.prospect.last_person_contact_at = registration.checked_in_at  # retention
    for kind in STOPPED_KINDS:
        followups.cancel_open(registration, kind, "La personne est venue à l'open lab.")
    if lab.status == "done":  # checked in late, after closing: like the others
        followups.start_thank_you(registration)
        lab_day.invite_late_attendee(registration, actor)
    when = format_local_time(registration.checked_in_at)
    return CheckInResult(registration, True, f"{name} est enregistré·e présent·e à {when}.")


def already_message(registration: Registration) -> str:
    """'Déjà enregistré·e à 14:05' (or without the time when marked present elsewhere)."""
    name = registration.prospect.full_name
    if registration.checked_in_at is None:
        return f"{name} : déjà enregistré·e présent·e."
    return f"{name} : déjà enregistré·e à {format_local_time(registration.checked_in_at)}."


def undo(registration: Registration, actor: User | None) -> CheckInResult:
    """A mis-tap: back to the status before the check-in (confirmed, or waitlisted for someone
    on the waiting list: no place is taken), no check-in time (the caller commits). The
    cancelled invitation rows stay cancelled: the person is expected today."""
    name = registration.prospect.full_name
    if registration.status != "attended":
        return CheckInResult(registration, False, f"{name} n'était pas enregistré·e présent·e.")
    registrations.undo_check_in(registration, actor, UNDO_REASON)
    registration.checked_in_at = None
    return CheckInResult(registration, True, f"Présence de {name} annulée.")


def search(lab: Lab, query: str = "", limit: int = 30) -> SearchResult:
    """The lab's registrations whose name, organisation, e-mail or phone contain every word of
    `query` (accents and case ignored). Without a query: the people expected (confirmed,
    waitlisted, present). With one: everyone registered, expected people first (anyone
    invited may turn up), then by name; people out of scope come last, marked as such."""
    select = (
        sa.select(Registration)
        .join(Prospect, Prospect.id == Registration.prospect_id)
        .where(Registration.lab_id == lab.id)
        .options(contains_eager(Registration.prospect))
    )
    words = fold(query.replace("\x00", "")).split()
    if not words:
        expected = [status for status, rank in SEARCH_RANKS.items() if rank == 0]
        select = select.where(Registration.status.in_(expected))
    for word in words[:5]:  # a handful of words is plenty; more only slows the query
        select = select.where(Prospect.search_text.contains(word, autoescape=True))
    rank = sa.case(SEARCH_RANKS, value=Registration.status, else_=9)
    select = select.order_by(
        rank, sa.func.lower(Prospect.last_name), sa.func.lower(Prospect.first_name), Prospect.id
    ).limit(limit + 1)
    found = list(db.session.scalars(select))
    return SearchResult(found[:limit], len(found) > limit)


def counts(lab: Lab) -> Counts:
    """Present (attended) and expected (confirmed + attended), in one grouped query."""
    rows = db.session.execute(
        sa.select(Registration.status, sa.func.count())
        .where(Registration.lab_id == lab.id, Registration.status.in_(("confirmed", "attended")))
        .group_by(Registration.status)
    ).all()
    found = {status: count for status, count in rows}
    present = found.get("attended", 0)
    return Counts(present=present, expected=present + found.get("confirmed", 0))


CONSENT_BASIS = "Accord donné à l'oral à l'accueil du lab"


def walk_in(lab: Lab, data: WalkIn, actor: User | None) -> WalkInResult:
    """Register a person who turned up and check them in (the caller commits; on an error the
    caller rolls back, so nothing is kept). A phone or e-mail already known finds that person
    instead of creating a second one."""
    person = _checked_walk_in(data)
    prospect, created = prospects.save(
        person, walk_in_source(), actor, WALK_IN_REASON, contact_required=False
    )
    for channel in data.consents:
        prospects.set_permission(
            prospect, channel, True, "oral", actor, from_person=True, basis=CONSENT_BASIS
        )
    registration, _ = registrations.register(prospect, lab, actor, WALK_IN_REASON)
    return WalkInResult(check_in(registration, actor), created)


def _checked_walk_in(data: WalkIn) -> prospects.ProspectInput:
    """Stricter than an import: a phone or e-mail typed at the desk must be readable."""
    fields = {k: v for k, v in asdict(data).items() if k != "consents"}
    person = prospects.ProspectInput.from_mapping(fields)
    if not person.first_name:
        raise CheckInError("Saisissez le prénom.", "first_name")
    if not person.last_name:
        raise CheckInError("Saisissez le nom.", "last_name")
    if person.phone and normalise_phone(person.phone) is None:
        raise CheckInError(BAD_PHONE, "phone")
    if person.email and normalise_email(person.email) is None:
        raise CheckInError(BAD_EMAIL, "email")
    return person


def walk_in_source() -> Source:
    """The "Sur place" source, created the first time (its name is unique, any case). Two desks
    creating it in the same instant: one gets an IntegrityError and the view asks to retry."""
    query = sa.select(Source).where(sa.func.lower(Source.name) == WALK_IN_SOURCE.lower())
    source = db.session.scalar(query)
    if source is None:
        source = Source(
            name=WALK_IN_SOURCE, description="Personnes inscrites à l'accueil d'un open lab."
        )
        db.session.add(source)
        db.session.flush()
    return source
