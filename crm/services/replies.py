"""Inbound SMS: stored raw first, then understood and acted on.

`receive` inserts the message (unique on MessageSid: a message Twilio posts again is
processed once, the second post finds the row and stops), then acts on it and commits once.
When acting fails, everything is rolled back and the raw row is committed alone, `received`,
listed for a manager. Only a database that cannot be written at all leaves a message unstored:
the webhook then answers 500, which Twilio records as an error on its side.
Acting matches the sender by normalised phone, reads the answer
(crm.services.reply_parser), applies it through crm.services.answers and returns the short
polite reply to send back (None: no reply). A reply that is not understood, ambiguous, or
that cannot apply becomes a "to read" task for the callers and changes nothing by itself.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import contains_eager
from sqlalchemy.orm.exc import StaleDataError

from crm.extensions import db
from crm.models import Event, FollowUp, InboundMessage, Lab, Prospect, Registration, User
from crm.models.inbound import INBOUND_TO_HANDLE
from crm.services import answers, call_queue, registrations, sequences
from crm.services.normalise import normalise_phone
from crm.services.reply_parser import Reply, understand
from crm.timeutil import utcnow

log = logging.getLogger(__name__)

# A reply can answer an invitation (pending) or a reminder (confirmed).
ANSWERABLE = registrations.PENDING | {"confirmed"}
SIGNATURE = "L'équipe Open Lab"
TEXTS = {
    "confirmed": 'Merci {prenom} ! Votre venue au lab "{lab}" le {date} est confirmée. '
    "Adresse : {lieu}. " + SIGNATURE,
    "already_confirmed": 'C\'est noté, votre venue au lab "{lab}" le {date} est bien '
    "confirmée. " + SIGNATURE,
    "waitlisted": 'Merci {prenom} ! Le lab "{lab}" du {date} est complet : vous êtes sur '
    "liste d'attente (rang {rang}). Nous vous écrirons si une place se libère. " + SIGNATURE,
    "offer_expired": 'Désolé {prenom}, le délai pour accepter la place au lab "{lab}" est '
    "passé. Vous restez sur liste d'attente (rang {rang}) : nous vous écrirons si une autre "
    "place se libère. " + SIGNATURE,
    "declined": "C'est noté, merci de nous avoir prévenus. Nous ne vous relancerons pas pour "
    'le lab "{lab}". ' + SIGNATURE,
    "opted_out": "Vous ne recevrez plus de SMS de l'équipe Open Lab. Pour les recevoir à "
    "nouveau, répondez START.",
    "opted_in": "C'est noté : vous recevrez de nouveau les SMS de l'équipe Open Lab. Pour "
    "arrêter, répondez STOP.",
    "help": "L'équipe Open Lab vous invite à des ateliers pour améliorer un service public. "
    "Répondez OUI pour confirmer votre venue, NON si vous ne pouvez pas venir, STOP pour ne "
    "plus recevoir de SMS.",
}


# The reply to a "yes" and the note kept on the inbound message, per Confirmation.status.
CONFIRM_ANSWERS = {
    "confirmed": (TEXTS["confirmed"], "Venue confirmée."),
    "already": (TEXTS["already_confirmed"], "Déjà confirmée."),
    "waitlisted": (TEXTS["waitlisted"], "Open lab complet : liste d'attente."),
    "still_waitlisted": (TEXTS["waitlisted"], "Toujours en liste d'attente (complet)."),
}


def receive(params: Mapping[str, str]) -> str | None:
    """Store the raw message and act on it in one transaction (one commit); the reply text,
    or None (no reply, or this MessageSid was already stored). When acting fails, the raw
    message is committed alone, `received`, for a manager to read."""
    for attempt in (1, 2):
        inbound = _insert(params)
        if inbound is None:
            return None
        sid = inbound.message_sid
        try:
            with db.session.no_autoflush:  # one write per row, at the commit
                reply = _apply(inbound)
            db.session.commit()
            return reply
        except StaleDataError:
            # Two messages of one person processed at once changed the same registration:
            # the other one won; read the new state and apply this one after it.
            db.session.rollback()
            if attempt == 2:
                log.warning("inbound SMS %s: registration changed twice meanwhile", sid)
        except Exception:
            db.session.rollback()
            log.exception("inbound SMS %s could not be processed", sid)
            break
    if _insert(params) is not None:
        db.session.commit()
    return None


def _insert(params: Mapping[str, str]) -> InboundMessage | None:
    """Insert the raw message (flushed, not committed); None when this MessageSid is already
    stored (a concurrent post of the same one waits here until the first one commits).
    NUL characters are dropped: PostgreSQL text cannot hold them, and nothing may be lost."""
    params = {key.replace("\x00", ""): value.replace("\x00", "") for key, value in params.items()}
    sid = (params.get("MessageSid") or params.get("SmsSid") or "").strip()
    if not sid:
        raise ValueError("MessageSid manquant")
    sender = params.get("From", "")
    row = InboundMessage(
        message_sid=sid[:64],
        from_number=sender[:40],
        from_e164=normalise_phone(sender),
        to_number=params.get("To", "")[:40],
        body=params.get("Body", ""),
        params=dict(params),
    )
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return None
    return row


@dataclass(frozen=True)
class Target:
    registration: Registration | None
    why: str = ""  # set when the reply cannot be applied to `registration` by itself


def find_sender(phone: str | None, now: datetime) -> tuple[Prospect | None, list[Registration]]:
    """The prospect with this phone and their registrations a reply can answer (labs not over
    yet, the earliest first), in one query: their labs come with them, so reading
    `registration.lab` later costs no query."""
    if not phone:
        return None, []
    answerable = sa.and_(
        Registration.prospect_id == Prospect.id,
        Registration.status.in_(ANSWERABLE),
        Lab.ends_at > now,
    )
    rows = db.session.execute(
        sa.select(Prospect, Registration)
        .outerjoin(sa.join(Registration, Lab, Lab.id == Registration.lab_id), answerable)
        .options(contains_eager(Registration.lab))
        .where(Prospect.phone == phone)
        .order_by(Lab.starts_at)
    ).all()
    if not rows:
        return None, []
    return rows[0][0], [registration for _, registration in rows if registration is not None]


def target_registration(waiting: list[Registration], now: datetime) -> Target:
    """The registration a yes/no answers among the person's `waiting` ones (find_sender): the
    only one, or the one most recently messaged by SMS; ambiguous otherwise."""
    if not waiting:
        return Target(None, "Aucune inscription en attente de réponse.")
    if len(waiting) == 1:
        return Target(waiting[0])
    last_sent = dict(
        db.session.execute(
            sa.select(FollowUp.registration_id, sa.func.max(FollowUp.sent_at))
            .where(
                FollowUp.registration_id.in_([r.id for r in waiting]),
                FollowUp.message_id.is_not(None),
                FollowUp.sent_at.is_not(None),
            )
            .group_by(FollowUp.registration_id)
        ).all()
    )
    never = datetime.min.replace(tzinfo=now.tzinfo)
    ranked = sorted(waiting, key=lambda r: last_sent.get(r.id) or never, reverse=True)
    first, second = ranked[0], ranked[1]
    if first.id not in last_sent or last_sent.get(first.id) == last_sent.get(second.id):
        return Target(first, "Plusieurs open labs attendent une réponse : lequel ?")
    return Target(first)


def _apply(inbound: InboundMessage) -> str | None:
    now = utcnow()
    prospect, waiting = find_sender(inbound.from_e164, now)
    answer = understand(inbound.body)
    inbound.understood = answer.value
    if prospect is None:
        inbound.outcome, inbound.note = "unknown_sender", "Aucune personne avec ce numéro."
        return None
    inbound.prospect_id = prospect.id
    if answer is not Reply.OPT_OUT:  # a STOP objects: it does not extend the retention
        prospect.last_person_contact_at = now
    if answer is Reply.OPT_OUT:
        changed = answers.opt_out(prospect, "sms", ("sms",), basis=inbound.body[:200])
        text = sequences.with_sender(TEXTS["opted_out"]) if changed else None
        return _applied(inbound, "SMS refusés (STOP).", text)
    if answer is Reply.OPT_IN:
        answers.opt_in_sms(prospect, basis=inbound.body[:200])
        text = sequences.with_sender(TEXTS["opted_in"])
        return _applied(inbound, "SMS acceptés de nouveau (START).", text)
    if answer is Reply.HELP:
        return _applied(inbound, "Aide envoyée.", sequences.with_sender(TEXTS["help"]))
    target = target_registration(waiting, now)
    registration = target.registration
    if registration is not None:
        inbound.registration_id = registration.id
    if answer is Reply.UNKNOWN or target.why or registration is None:
        _to_read(inbound, registration, target.why or "Réponse à lire.")
        return None
    fields = sequences.fields_for(registration, prospect, registration.lab)
    try:
        if answer is Reply.CONFIRM:
            confirmation = answers.confirm(registration, "sms")
            text, note = CONFIRM_ANSWERS[confirmation.status]
            fields["rang"] = str(confirmation.rank or "")
            if confirmation.offer_expired:
                text = TEXTS["offer_expired"]
        else:
            answers.decline(registration, "sms")
            text, note = TEXTS["declined"], "Invitation déclinée."
    except registrations.TransitionError as exc:
        _to_read(inbound, registration, str(exc))
        return None
    reply = sequences.render(sequences.with_sender(text), fields)
    return _applied(inbound, note, reply, registration)


def mark_handled(inbound: InboundMessage, actor: User) -> bool:
    """A manager read a message that needed a person (not understood, unknown number...): it
    leaves the list, and the person's timeline says who read it. False when it was not
    waiting for anyone. The caller commits."""
    if inbound.outcome not in INBOUND_TO_HANDLE:
        return False
    inbound.outcome, inbound.handled_by_id = "read", actor.id
    db.session.add(
        Event(
            kind="reply.handled",
            actor_id=actor.id,
            prospect_id=inbound.prospect_id,
            registration_id=inbound.registration_id,
            reason="SMS lu et traité",
            data={"inbound_id": inbound.id},
        )
    )
    return True


def _applied(
    inbound: InboundMessage,
    note: str,
    reply: str | None,
    registration: Registration | None = None,
) -> str | None:
    inbound.outcome, inbound.note = "applied", note
    _event(inbound, note, registration)
    return reply


def _to_read(inbound: InboundMessage, registration: Registration | None, why: str) -> None:
    """A person reads it: a task in the callers' queue when we know which lab, else the
    managers' list of replies."""
    inbound.outcome, inbound.note = "to_read", why
    if registration is not None:
        note = f"SMS reçu : « {inbound.body[:500]} » ({why})"
        call_queue.add_task(registration, "to_read", note)
    _event(inbound, why, registration)


def _event(inbound: InboundMessage, note: str, registration: Registration | None) -> None:
    db.session.add(
        Event(
            kind="reply.received",
            prospect_id=inbound.prospect_id,
            lab_id=registration.lab_id if registration else None,
            registration_id=inbound.registration_id,
            reason=note,
            data={
                "inbound_id": inbound.id,
                "body": inbound.body[:500],
                "understood": inbound.understood,
            },
        )
    )
