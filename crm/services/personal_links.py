"""The personal link (/r/<token>) a person gets in every SMS and e-mail: what a token points
to, the three answers it offers, the one-click e-mail unsubscribe and the calendar file.

The token is crm.services.sequences.personal_link's: the registration id signed with
itsdangerous (no timestamp inside, which keeps it short enough for an SMS). It expires with
the lab instead: once the lab has ended nothing is left to answer. The effects of an answer
are crm.services.answers' (events, consent ledger, follow-ups), shared with SMS replies; this
module only decides whether the link may still be used and what to tell the person.
Functions change the session only; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal
from urllib.parse import urlencode, urlsplit

from flask import current_app
from icalendar import Calendar
from icalendar import Event as CalendarEvent
from itsdangerous import BadData, URLSafeSerializer

from crm.extensions import db
from crm.models import Prospect, Registration
from crm.services import answers, sequences, waitlist
from crm.services.labs import lab_when
from crm.timeutil import utcnow

LinkStatus = Literal["valid", "invalid", "expired", "used"]
Action = Literal["confirm", "decline", "stop"]
# Nothing left to answer: the team closed the registration, or the lab already took place.
USED_STATUSES = frozenset({"cancelled", "disqualified", "attended", "no_show"})
ALL_CHANNELS = ("sms", "email", "phone")
STOP_BASIS = "lien personnel"
ONE_CLICK_BASIS = "désinscription en un clic depuis un e-mail (RFC 8058)"
# Up to this long, a lab is announced as a half day.
HALF_DAY = timedelta(hours=5)
MAP_SEARCH = "https://www.openstreetmap.org/search"
CURRENT_ANSWERS = {
    "confirmed": "Vous avez confirmé votre présence.",
    "declined": "Vous nous avez indiqué que vous ne pourrez pas venir.",
    "waitlisted": "Vous êtes sur liste d'attente : nous vous recontacterons si une place "
    "se libère.",
}


@dataclass(frozen=True)
class LinkState:
    status: LinkStatus
    registration: Registration | None = None

    @property
    def valid(self) -> bool:
        return self.status == "valid"

    @property
    def can_stop(self) -> bool:
        """Withdrawing consent stays possible after the lab: the thank-you e-mail, sent the
        day after, carries this link as its only way to stop (and its List-Unsubscribe)."""
        return self.registration is not None


@dataclass(frozen=True)
class Outcome:
    """What an action did, in French for the person: `changed` False means "déjà"."""

    changed: bool
    message: str


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=sequences.LINK_SALT)


def registration_for(token: str) -> LinkState:
    """What the token points to; never raises on a tampered or garbage token."""
    try:
        registration_id = _serializer().loads(token)
    except (BadData, ValueError, UnicodeError):
        return LinkState("invalid")
    # Only sequences.personal_link signs with this salt, and it signs ints; bool is an int.
    if not isinstance(registration_id, int) or isinstance(registration_id, bool):
        return LinkState("invalid")
    if not 0 < registration_id < 2**63:
        return LinkState("invalid")
    registration = db.session.get(Registration, registration_id)
    if registration is None:
        return LinkState("invalid")
    if registration.lab.ends_at < utcnow():
        return LinkState("expired", registration)
    if registration.status in USED_STATUSES:
        return LinkState("used", registration)
    return LinkState("valid", registration)


def answer(state: LinkState, action: Action) -> Outcome:
    """Apply one of the page's three buttons; raises TransitionError when the registration
    cannot take that status (the caller rolls back and sends the person to the team)."""
    registration = state.registration
    if registration is None or (action != "stop" and not state.valid):
        raise ValueError(f"{action} is not possible on a {state.status} link")
    if action != "stop":  # the person answered: retention restarts (a STOP objects instead)
        registration.prospect.last_person_contact_at = utcnow()
    if action == "confirm":
        return _confirmation_outcome(answers.confirm(registration, "link"))
    if action == "decline":
        if answers.decline(registration, "link"):
            return Outcome(
                True, "C'est noté : vous ne pourrez pas venir. Merci de nous avoir prévenus."
            )
        return Outcome(False, "Vous nous avez déjà indiqué que vous ne pourrez pas venir.")
    if answers.opt_out(registration.prospect, "link", ALL_CHANNELS, basis=STOP_BASIS):
        return Outcome(True, "C'est noté : nous ne vous contacterons plus.")
    return Outcome(False, "Vous ne recevez déjà plus de messages de notre part.")


def _confirmation_outcome(confirmation: answers.Confirmation) -> Outcome:
    if confirmation.status == "confirmed":
        return Outcome(True, "Merci ! Votre présence est confirmée. À bientôt.")
    if confirmation.status == "already":
        return Outcome(False, "Votre présence est déjà confirmée.")
    rank = f" (rang {confirmation.rank})" if confirmation.rank else ""
    if confirmation.status == "waitlisted":
        return Outcome(
            True,
            f"Merci ! L'open lab est complet : vous êtes sur liste d'attente{rank}. "
            "Nous vous écrirons si une place se libère.",
        )
    if confirmation.offer_expired:
        return Outcome(
            False,
            "Le délai pour accepter la place proposée est dépassé : elle a été proposée à "
            f"quelqu'un d'autre. Vous restez sur liste d'attente{rank} ; nous vous écrirons "
            "si une autre place se libère.",
        )
    return Outcome(
        False,
        f"L'open lab est toujours complet : vous restez sur liste d'attente{rank}. "
        "Nous vous écrirons si une place se libère.",
    )


def unsubscribe_email(state: LinkState) -> bool:
    """RFC 8058 one-click: stop e-mails only ("this list"), not SMS or calls. False when
    e-mail was already withdrawn."""
    if state.registration is None:
        raise ValueError("one-click unsubscribe needs an authentic link")
    return answers.opt_out(state.registration.prospect, "email", ("email",), ONE_CLICK_BASIS)


def contactable(prospect: Prospect) -> bool:
    return any(prospect.allows(channel) for channel in ALL_CHANNELS)


@dataclass(frozen=True)
class LabPage:
    """What the page shows about the lab and the person's current answer."""

    title: str
    when: str
    duration: str
    venue: str
    map_url: str | None
    answer: str | None
    contactable: bool
    declined: bool


def page_for(registration: Registration) -> LabPage:
    lab = registration.lab
    venue = lab.venue.strip()
    current = _current_answer(registration)
    return LabPage(
        title=lab.title,
        when=lab_when(lab),
        duration="Demi-journée" if lab.ends_at - lab.starts_at <= HALF_DAY else "Journée entière",
        venue=venue,
        map_url=f"{MAP_SEARCH}?{urlencode({'query': venue})}" if venue else None,
        answer=current,
        contactable=contactable(registration.prospect),
        declined=registration.status == "declined",
    )


def _current_answer(registration: Registration) -> str | None:
    if registration.status != "waitlisted":
        return CURRENT_ANSWERS.get(registration.status)
    offer = waitlist.holding_offer(registration, utcnow())
    if offer is not None and offer.status == "sent":
        return (
            "Une place s'est libérée pour vous ! Elle vous est réservée jusqu'au "
            f"{waitlist.describe_deadline(offer)} : confirmez votre présence ci-dessous."
        )
    rank = waitlist.rank(registration)
    return (
        f"L'open lab est complet : vous êtes sur liste d'attente (rang {rank}). Nous vous "
        "écrirons si une place se libère."
    )


def calendar_for(registration: Registration) -> bytes:
    """An .ics with one VEVENT; its UID is stable per registration, so importing the file
    again (after a change of time) updates the event instead of adding a second one."""
    lab = registration.lab
    link = sequences.personal_link(registration.id)
    host = urlsplit(link).hostname or "open-lab"
    calendar = Calendar()
    calendar.add("prodid", "-//Open Lab CRM//personal link//FR")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = CalendarEvent()
    event.add("uid", f"registration-{registration.id}@{host}")
    event.add("dtstamp", utcnow())
    event.add("dtstart", lab.starts_at)  # aware UTC: written as ...Z
    event.add("dtend", lab.ends_at)
    event.add("summary", f"Open lab : {lab.title}")
    if lab.venue.strip():
        event.add("location", lab.venue.strip())
    event.add(
        "description",
        f"Atelier en petits groupes pour améliorer un service public.\n"
        f"Répondre ou ne plus être contacté·e : {link}",
    )
    event.add("url", link)
    calendar.add_component(event)
    return calendar.to_ical()
