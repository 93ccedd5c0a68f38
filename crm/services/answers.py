"""What a person's answer does, whichever way it came (SMS reply, personal link, e-mail
unsubscribe): one set of effects, so that "oui" by SMS and the "Je confirme" button agree.

Every function changes the session only; the caller commits. A status the registration can
no longer take (disqualified, already attended...) raises TransitionError: the caller decides
whether a person reads it (SMS) or the page explains it (link).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from crm.models import FollowUp, Prospect, Registration
from crm.services import followups, prospects, registrations, waitlist
from crm.services.registrations import LabFull, TransitionError

VIA_LABELS = {
    "sms": "réponse par SMS",
    "link": "lien personnel",
    "email": "désinscription depuis un e-mail",
}
CONSENT_METHODS = {"sms": "sms_keyword", "link": "signed_link", "email": "signed_link"}
ALL_CHANNELS = ("sms", "email", "phone")

__all__ = ["Confirmation", "TransitionError", "confirm", "decline", "opt_in_sms", "opt_out"]


@dataclass(frozen=True)
class Confirmation:
    """What a "yes" did: `status` is "confirmed", "already" (nothing changed), "waitlisted"
    (the lab is full: put on the waiting list) or "still_waitlisted" (already on it and
    still no place; `offer_expired` when the place offered to them has gone)."""

    status: str
    rank: int | None = None
    offer_expired: bool = False


def confirm(registration: Registration, via: str) -> Confirmation:
    """Confirm the registration (invitation stopped, reminders scheduled), or put the person
    on the waiting list when the lab is full."""
    if registration.status == "confirmed":
        return Confirmation("already")
    try:
        registrations.change_status(registration, "confirmed", None, VIA_LABELS[via])
    except LabFull as full:
        return Confirmation("still_waitlisted", full.rank, full.offer_expired)
    if registration.status == "waitlisted":
        return Confirmation("waitlisted", waitlist.rank(registration))
    return Confirmation("confirmed")


def decline(registration: Registration, via: str) -> bool:
    """Decline (every follow-up of this registration cancelled); False when already declined."""
    if registration.status == "declined":
        return False
    registrations.change_status(registration, "declined", None, VIA_LABELS[via])
    return True


def opt_out(prospect: Prospect, via: str, channels: tuple[str, ...], basis: str) -> bool:
    """Withdraw the permissions for `channels` (consent ledger rows, from the person) and
    cancel the automated messages that can no longer go; False when nothing changed."""
    changed = False
    for channel in channels:
        consent = prospects.set_permission(
            prospect, channel, False, CONSENT_METHODS[via], None, from_person=True, basis=basis
        )
        changed = changed or consent is not None
    if changed and set(channels) >= {"sms", "email"}:
        followups.cancel_open_where(
            f"La personne ne veut plus être contactée ({VIA_LABELS[via]}).",
            FollowUp.registration_id.in_(
                sa.select(Registration.id).where(Registration.prospect_id == prospect.id)
            ),
        )
    return changed


def opt_in_sms(prospect: Prospect, basis: str) -> bool:
    """START / UNSTOP: SMS allowed again, at the person's request."""
    consent = prospects.set_permission(
        prospect, "sms", True, "sms_keyword", None, from_person=True, basis=basis
    )
    return consent is not None
