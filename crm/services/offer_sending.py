"""Telling the next person on a waiting list that a place is theirs: job "offer-<id>".

The offer rows are made by crm.services.waitlist.fill; this module sends each one once, by
SMS when allowed, else by e-mail, inside the lab's send window, with the personal link to
confirm. The Message row and the offer's link to it are committed before the provider is
called (crm.messaging.delivery.claim): a job run twice, or after a worker died during the
call, never sends a second message; an offer left in doubt counts as sent, so its deadline
runs and the place moves on if nobody answers.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from crm.extensions import db
from crm.messaging.email import deliver_email, prepare_email
from crm.messaging.errors import SendError
from crm.messaging.sms import current_sender, deliver_sms, prepare_sms
from crm.models import Lab, Message, PlaceOffer, Prospect, Registration
from crm.services import sending, sequences, waitlist
from crm.services.window import is_open, send_window
from crm.timeutil import format_local, utcnow

SEND_JOB = "workers.jobs.send_offer"
SMS_TEXT = (
    "Bonne nouvelle {prenom} : une place s'est libérée pour l'open lab \"{lab}\" le {date}. "
    "Elle vous est réservée jusqu'au {echeance}. Pour la prendre : {lien} L'équipe Open Lab"
)
EMAIL_SUBJECT = "Une place s'est libérée pour l'open lab « {lab} »"
EMAIL_TEXT = """Bonjour {prenom},

Une place s'est libérée pour l'open lab « {lab} » le {date} ({lieu}),
et vous étiez sur la liste d'attente.

Elle vous est réservée jusqu'au {echeance}. Pour la prendre, ou pour nous dire
que vous ne pourrez pas venir, ouvrez votre lien personnel :
{lien}

Sans réponse d'ici là, nous la proposerons à la personne suivante.

L'équipe Open Lab
"""
NO_CHANNEL = "Aucun moyen de prévenir la personne (SMS et e-mail non autorisés)."


def job_id(offer_id: int) -> str:
    return f"offer-{offer_id}"


def enqueue_due(now: datetime) -> int:
    """One send job per offer waiting to go whose lab's send window is open."""
    from workers.queues import MESSAGES, enqueue_once

    rows = db.session.execute(
        sa.select(PlaceOffer.id, Lab)
        .join(Lab, Lab.id == PlaceOffer.lab_id)
        .where(PlaceOffer.status == "scheduled")
    ).all()
    enqueued = 0
    for offer_id, lab in rows:
        if not is_open(now, send_window(lab)):
            continue
        # A job already there for it is waiting or ran: the row's status decides.
        enqueued += enqueue_once(
            MESSAGES, SEND_JOB, offer_id, job_id=job_id(offer_id), result_ttl=600
        )
    return enqueued


def _channel(prospect: Prospect) -> str | None:
    if prospect.can_get_sms:
        return "sms"
    return "email" if prospect.can_get_email else None


def _prepare(offer: PlaceOffer, channel: str, expires_at: datetime) -> Message:
    registration = offer.registration
    prospect, lab = registration.prospect, registration.lab
    fields = sequences.fields_for(registration, prospect, lab)
    fields["echeance"] = format_local(expires_at, with_day=True)
    if channel == "sms":
        return prepare_sms(
            str(prospect.phone),
            sequences.render(sequences.with_sender(SMS_TEXT), fields),
            prospect_id=prospect.id,
        )
    body = sequences.render(sequences.with_sender(EMAIL_TEXT), fields)
    return prepare_email(
        str(prospect.email),
        sequences.render(EMAIL_SUBJECT, fields),
        body,
        sequences.email_html(body),
        unsubscribe_url=fields["lien"],
        prospect_id=prospect.id,
    )


def send(offer_id: int) -> str:
    """Send one offer if it is still waiting to go; returns the offer's status."""
    offer = db.session.get(PlaceOffer, offer_id)
    if offer is None:
        return "absent"
    if offer.status != "scheduled":
        return offer.status
    now = utcnow()
    registration: Registration = offer.registration
    lab = registration.lab
    if offer.message_id is not None:
        # A worker died during the provider call: the person may have it, so it counts.
        _sent(offer, now, "Envoi interrompu : la proposition compte comme envoyée.")
        db.session.commit()
        return offer.status
    if registration.status != "waitlisted":
        _cancel(offer, now, "La personne n'est plus sur liste d'attente.")
        return offer.status
    if not is_open(now, send_window(lab)):
        return offer.status  # the next dispatcher pass inside the window sends it
    channel = _channel(registration.prospect)
    if channel is None:
        _cancel(offer, now, NO_CHANNEL)
        return offer.status
    if channel == "sms":
        sending.pace_sms(current_sender().value)
    message = _prepare(offer, channel, waitlist.deadline(lab, now))
    linked = db.session.execute(
        sa.update(PlaceOffer)
        .where(
            PlaceOffer.id == offer.id,
            PlaceOffer.status == "scheduled",
            PlaceOffer.message_id.is_(None),
        )
        .values(message_id=message.id, channel=channel)
        .execution_options(synchronize_session=False)
    )
    if linked.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()  # another job took it; our Message goes with the rollback
        return "scheduled"
    try:
        # claim() commits the Message as `sending` together with the offer's link to it.
        deliver_sms(message) if channel == "sms" else deliver_email(message)
    except SendError as error:
        db.session.refresh(offer)
        if error.maybe_sent:
            _sent(offer, now, f"Envoi peut-être effectué : {error}")
        else:
            offer.status, offer.closed_at = "cancelled", now
            offer.reason = f"Envoi impossible : {error}"
            waitlist.record(offer, "waitlist.offer_cancelled", offer.reason)
        db.session.commit()
        return offer.status
    db.session.refresh(offer)
    label = "SMS" if channel == "sms" else "e-mail"
    _sent(offer, now, f"Proposition envoyée par {label}.")
    db.session.commit()
    return offer.status


def _sent(offer: PlaceOffer, now: datetime, note: str) -> None:
    lab = offer.registration.lab
    offer.status, offer.sent_at, offer.reason = "sent", now, note
    offer.expires_at = waitlist.deadline(lab, now)
    waitlist.record(
        offer,
        "waitlist.offer_sent",
        f"{note} Réservée jusqu'au {waitlist.describe_deadline(offer)}.",
    )


def _cancel(offer: PlaceOffer, now: datetime, reason: str) -> None:
    offer.status, offer.closed_at, offer.reason = "cancelled", now, reason
    waitlist.record(offer, "waitlist.offer_cancelled", reason)
    db.session.commit()
