"""The fault suite's campaign: seeding, the people answering by SMS, Twilio's delivery
receipts, waiting for the layout to settle, and the final counts.

Everything talks to the production layout (deploy/prod_local.py) over 127.0.0.1: the web
app through HTTP with signed webhooks, the database through the app's own models.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import requests
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import aliased
from twilio.request_validator import RequestValidator

from crm import create_app
from crm.extensions import db
from crm.messaging.webhooks import INBOUND_PATH, STATUS_PATH
from crm.models import (
    EarlyReceipt,
    Event,
    FollowUp,
    InboundMessage,
    Lab,
    Message,
    Prospect,
    Registration,
    Sequence,
    SequenceStep,
    Source,
)
from crm.services import registrations
from crm.services.labs import CONFIRMED_STATUSES
from crm.timeutil import utcnow
from deploy.prod_local import ACCOUNT_SID, AUTH_TOKEN, SENDER, ProdLocal

OPEN_STATUSES = ("scheduled", "queued", "sending")
FINAL_STATUSES = ("sent", "delivered", "skipped", "failed", "cancelled", "unknown")
# What people answer, roughly (text, weight); "oui" confirms, "non" declines, STOP opts out.
REPLIES = [
    ("oui", 25),
    ("Oui je serai là !", 8),
    ("ok 👍", 8),
    ("Non merci", 12),
    ("non désolé", 4),
    ("STOP", 5),
    ("c'est où ?", 18),
    ("C'est à quelle heure ?", 10),
    ("START", 4),
    ("aide", 6),
]
RECEIPT_DELAY = 10.0
SMS_TEXT = (
    "Bonjour {prenom} {nom}, l'open lab « {lab} » a lieu le {date} à {lieu}. "
    "Répondez OUI ou NON. Open Lab {lien}"
)
EMAIL_TEXT = "Bonjour {prenom} {nom},\n\nVenez à l'open lab « {lab} » le {date}.\n\nOpen Lab"


def layout_app(layout: ProdLocal) -> Flask:
    """The app as the layout's processes build it (same environment), for seeding and counts."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(layout.app_env())
        return create_app()
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class Seeded:
    lab_ids: list[int]
    phones: list[str]
    capacity: dict[int, int]


def seed(app: Flask, people: int) -> Seeded:
    """Two labs recruiting, each with its own invitation (an SMS due at once; the second lab
    also an e-mail) and a send window open every day, `people` prospects split between
    them: registering them schedules the rows, as an import does."""
    with app.app_context():
        now = utcnow()
        source = Source(name="Campagne de test")
        labs = [
            Lab(
                title=title,
                venue="Paris 13e",
                starts_at=now + timedelta(days=20 + n),
                ends_at=now + timedelta(days=20 + n, hours=3),
                capacity=capacity,
                target=capacity - 20,
                overbooking=5,
                status="recruiting",
                send_days="1-7",
                send_hours="00:00-23:59",
            )
            for n, (title, capacity) in enumerate(
                [("Démarches en ligne", 150), ("Aides au logement", 400)]
            )
        ]
        db.session.add_all([source, *labs])
        db.session.flush()
        for lab, channels in zip(labs, (["sms"], ["sms", "email"]), strict=True):
            sequence = Sequence(lab_id=lab.id, kind="invitation", name="Invitation (test)")
            for position, channel in enumerate(channels, start=1):
                sequence.steps.append(
                    SequenceStep(
                        position=position,
                        channel=channel,
                        offset_minutes=0,
                        subject="Invitation à l'open lab « {lab} »",
                        body=SMS_TEXT if channel == "sms" else EMAIL_TEXT,
                    )
                )
            db.session.add(sequence)
        phones = [f"+3361{n:07d}" for n in range(1, people + 1)]
        rows = [
            {
                "first_name": random.choice(["Camille", "Nora", "Yanis", "Léa", "Hugo"]),
                "last_name": f"Nom{n}",
                "phone": phone,
                "email": f"personne{n}@exemple.fr",
                "source_id": source.id,
                "qualification": "yes",
                "allow_sms": True,
                "allow_email": True,
                "allow_phone": True,
                "search_text": f"nom{n}",
            }
            for n, phone in enumerate(phones, start=1)
        ]
        db.session.execute(sa.insert(Prospect), rows)
        ids = list(db.session.scalars(sa.select(Prospect.id).order_by(Prospect.id)))
        half = len(ids) // 2
        for lab, share in zip(labs, (ids[:half], ids[half:]), strict=True):
            registrations.register_many(lab.id, share, None, "Campagne de test")
        db.session.commit()
        seeded = Seeded([lab.id for lab in labs], phones, {lab.id: lab.capacity for lab in labs})
        db.session.remove()
        return seeded


# --- Twilio's side: people answering, delivery receipts ---------------------------------------


@dataclass
class Posted:
    """Every webhook post and its fate (Twilio retries what was not answered 200)."""

    answered: dict[str, int] = field(default_factory=dict)  # key -> last HTTP status
    # (replies are answered 200 with TwiML, receipts 204)
    attempts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, key: str, status: int) -> None:
        with self.lock:
            self.answered[key] = status
            self.attempts[key] += 1


class Twilio:
    """Posts what Twilio would post: replies (10 % posted again, as Twilio's retries do) and
    delivery receipts out of order; a post not answered 200 is posted again until it is."""

    def __init__(self, layout: ProdLocal, phones: list[str], seed: int = 7) -> None:
        self.layout, self.phones = layout, phones
        self.rng = random.Random(seed)
        self.validator = RequestValidator(AUTH_TOKEN)
        self.replies = Posted()
        self.receipts = Posted()
        self.replayed = 0
        self.expected_status: dict[str, str] = {}  # provider sid -> the furthest status posted
        self.pool = ThreadPoolExecutor(max_workers=16)
        self.stop = threading.Event()
        self.local = threading.local()
        self.give_up_after = 240.0

    def _session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session  # type: ignore[no-any-return]

    def _post(self, path: str, params: dict[str, str], key: str, book: Posted) -> None:
        url = self.layout.url + path
        signature = self.validator.compute_signature(url, params)
        deadline = time.monotonic() + self.give_up_after
        while True:
            try:
                answer = self._session().post(
                    url, data=params, headers={"X-Twilio-Signature": signature}, timeout=15
                )
                status = answer.status_code
            except requests.RequestException:
                status = 0
            book.record(key, status)
            if 200 <= status < 300 or time.monotonic() > deadline:
                return
            time.sleep(1.0)

    def reply(self) -> None:
        texts, weights = zip(*REPLIES, strict=True)
        sid = "SM" + secrets.token_hex(16)
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": ACCOUNT_SID,
            "From": self.rng.choice(self.phones),
            "To": SENDER,
            "Body": self.rng.choices(texts, weights)[0],
            "NumMedia": "0",
        }
        self.pool.submit(self._post, INBOUND_PATH, params, sid, self.replies)
        if self.rng.random() < 0.10:  # Twilio posts it again (it did not see our answer)
            self.replayed += 1
            delay = self.rng.uniform(0, 3)
            self.pool.submit(self._later, delay, INBOUND_PATH, params, sid, self.replies)

    def _later(self, delay: float, path: str, params: dict[str, str], key: str, book: Posted):  # type: ignore[no-untyped-def]
        time.sleep(delay)
        self._post(path, params, key, book)

    def receipts_for(self, messages: list[dict[str, Any]]) -> None:
        """For one message in five: delivered, then sent (late), then delivered again."""
        for message in messages:
            if self.rng.random() >= 0.2:
                continue
            sid = str(message["sid"])
            self.expected_status[sid] = "delivered"
            self.pool.submit(self._receipts, sid, str(message["to"]))

    def _receipts(self, sid: str, to: str) -> None:
        # Twilio's receipts come seconds after its answer: the worker has recorded the send.
        self.stop.wait(RECEIPT_DELAY)
        for n, status in enumerate(("delivered", "sent", "delivered")):
            params = {
                "MessageSid": sid,
                "SmsSid": sid,
                "AccountSid": ACCOUNT_SID,
                "From": SENDER,
                "To": to,
                "MessageStatus": status,
                "SmsStatus": status,
                "ApiVersion": "2010-04-01",
            }
            self._post(STATUS_PATH, params, f"{sid}:{n}", self.receipts)

    def run(self, seconds: float, rate: float) -> None:
        """Replies at `rate` per second for `seconds`, receipts for what the provider took."""
        started, seen, sent = time.monotonic(), 0, 0
        while time.monotonic() - started < seconds and not self.stop.is_set():
            target = int((time.monotonic() - started) * rate)
            while sent < target:
                self.reply()
                sent += 1
            if sent % max(int(rate * 5), 1) == 0:
                try:
                    accepted = self.layout.twilio_sent()
                    self.receipts_for(accepted[seen:])
                    seen = len(accepted)
                except OSError:
                    pass
            time.sleep(0.05)

    def finish(self) -> None:
        self.pool.shutdown(wait=True)


# --- settling and counting ---------------------------------------------------------------------


def open_rows(app: Flask) -> int:
    """Follow-ups due but not finished (scheduled and due, queued, sending), and receipts
    that came early and wait for the dispatcher's next pass."""
    with app.app_context():
        try:
            count = db.session.scalar(
                sa.select(sa.func.count(FollowUp.id)).where(
                    sa.or_(
                        FollowUp.status.in_(("queued", "sending")),
                        sa.and_(FollowUp.status == "scheduled", FollowUp.due_at <= utcnow()),
                    )
                )
            )
            early = db.session.scalar(
                sa.select(sa.func.count(EarlyReceipt.id)).where(
                    sa.exists().where(Message.provider_id == EarlyReceipt.provider_id)
                )
            )
            return int(count or 0) + int(early or 0)
        finally:
            db.session.remove()


def settle(app: Flask, timeout: float) -> tuple[bool, float]:
    """Wait until no due follow-up is left open three checks in a row: (settled, seconds)."""
    started = time.monotonic()
    quiet = 0
    while time.monotonic() - started < timeout:
        try:
            quiet = quiet + 1 if open_rows(app) == 0 else 0
        except sa.exc.OperationalError:
            quiet = 0
        if quiet >= 3:
            return True, time.monotonic() - started
        time.sleep(2)
    return False, time.monotonic() - started


def read_mails(layout: ProdLocal) -> list[dict[str, Any]]:
    if not layout.mail_log.exists():
        return []
    with layout.mail_log.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def counts(app: Flask, layout: ProdLocal, twilio: Twilio, seeded: Seeded) -> dict[str, Any]:
    """Everything the suite checks, as numbers (printed, then asserted)."""
    accepted = layout.twilio_sent()
    mails = read_mails(layout)
    with app.app_context():
        now = utcnow()
        followups = dict(
            db.session.execute(
                sa.select(FollowUp.status, sa.func.count())
                .where(FollowUp.due_at <= now)
                .group_by(FollowUp.status)
            ).all()
        )
        without_reason = db.session.scalar(
            sa.select(sa.func.count(FollowUp.id)).where(
                FollowUp.status.in_(("skipped", "failed", "cancelled", "unknown")),
                sa.func.coalesce(FollowUp.reason, "") == "",
            )
        )
        sms_rows = db.session.execute(
            sa.select(Message.provider_id, Message.to_address, Message.body, Message.status)
            .join(FollowUp, FollowUp.message_id == Message.id)
            .where(Message.channel == "sms", FollowUp.status.in_(("sent", "delivered")))
        ).all()
        email_ids = set(
            db.session.scalars(
                sa.select(Message.provider_id)
                .join(FollowUp, FollowUp.message_id == Message.id)
                .where(Message.channel == "email", FollowUp.status.in_(("sent", "delivered")))
            )
        )
        in_doubt = db.session.scalar(
            sa.select(sa.func.count(Message.id)).where(
                Message.channel == "sms", Message.status.in_(("sending", "unknown"))
            )
        )
        known_sids = set(
            db.session.scalars(sa.select(Message.provider_id).where(Message.channel == "sms"))
        )
        statuses = dict(
            db.session.execute(
                sa.select(Message.provider_id, Message.status).where(
                    Message.provider_id.in_(list(twilio.expected_status))
                )
            ).all()
        )
        inbound = Counter(db.session.scalars(sa.select(InboundMessage.message_sid)))
        outcomes = dict(
            db.session.execute(
                sa.select(InboundMessage.outcome, sa.func.count()).group_by(InboundMessage.outcome)
            ).all()
        )
        reply_events = db.session.scalar(
            sa.select(sa.func.count(Event.id)).where(Event.kind == "reply.received")
        )
        taken = dict(
            db.session.execute(
                sa.select(Registration.lab_id, sa.func.count())
                .where(Registration.status.in_(CONFIRMED_STATUSES))
                .group_by(Registration.lab_id)
            ).all()
        )
        overbooking = dict(db.session.execute(sa.select(Lab.id, Lab.overbooking)).all())
        over_capacity = sum(
            max(0, taken.get(lab, 0) - seeded.capacity[lab] - overbooking[lab])
            for lab in seeded.lab_ids
        )
        invitation = sa.select(SequenceStep.id).join(Sequence).where(Sequence.kind == "invitation")
        inconsistent = db.session.scalar(
            sa.select(sa.func.count(FollowUp.id))
            .join(Registration, Registration.id == FollowUp.registration_id)
            .where(
                FollowUp.status.in_(OPEN_STATUSES),
                FollowUp.step_id.in_(invitation),
                Registration.status.in_(("confirmed", "declined", "cancelled", "waitlisted")),
            )
        )
        # The append-only journal and the current state agree: each registration's status is
        # the one its last status event moved it to.
        journal = aliased(Event)
        last_event = (
            sa.select(sa.func.max(journal.id))
            .where(
                journal.registration_id == Registration.id,
                journal.kind.in_(("registration.created", "registration.status")),
            )
            .correlate(Registration)
            .scalar_subquery()
        )
        journal_disagrees = db.session.scalar(
            sa.select(sa.func.count(Registration.id))
            .join(Event, Event.id == last_event)
            .where(Event.to_status != Registration.status)
        )
        reminders = sa.select(SequenceStep.id).join(Sequence).where(Sequence.kind == "reminders")
        confirmed_without_reminders = db.session.scalar(
            sa.select(sa.func.count(Registration.id)).where(
                Registration.status == "confirmed",
                ~sa.exists().where(
                    FollowUp.registration_id == Registration.id,
                    FollowUp.step_id.in_(reminders),
                ),
            )
        )
        declined_with_open_rows = db.session.scalar(
            sa.select(sa.func.count(sa.distinct(Registration.id)))
            .join(FollowUp, FollowUp.registration_id == Registration.id)
            .where(Registration.status == "declined", FollowUp.status.in_(OPEN_STATUSES))
        )
        waitlisted_without_rank = db.session.scalar(
            sa.select(sa.func.count(Registration.id)).where(
                Registration.status == "waitlisted", Registration.waitlisted_at.is_(None)
            )
        )
        registration_statuses = dict(
            db.session.execute(
                sa.select(Registration.status, sa.func.count()).group_by(Registration.status)
            ).all()
        )
        db.session.remove()
    by_content = Counter((m["to"], m["body"]) for m in accepted)
    sent_content = Counter((to, body) for _, to, body, _ in sms_rows)
    mail_ids = Counter(m["message_id"] for m in mails)
    answered = {k for k, status in twilio.replies.answered.items() if 200 <= status < 300}
    # Every message stored is processed once (one event), except one from an unknown number.
    processed = sum(inbound.values()) - outcomes.get("received", 0)
    processed -= outcomes.get("unknown_sender", 0)
    return {
        "followups": followups,
        "followups_open": sum(followups.get(s, 0) for s in OPEN_STATUSES),
        "followups_without_reason": int(without_reason or 0),
        "unknown": followups.get("unknown", 0),
        "sms_accepted_by_provider": len(accepted),
        "sms_duplicates_at_provider": sum(n - 1 for n in by_content.values() if n > 1),
        "sms_sent_rows": len(sms_rows),
        "sms_sent_rows_not_at_provider": sum(
            1 for content in sent_content if by_content.get(content, 0) == 0
        ),
        "sms_at_provider_unrecorded": sum(1 for m in accepted if m["sid"] not in known_sids),
        # SMS whose send was cut short (follow-ups, and waiting-list offers, which count as
        # sent): the only ones the provider may hold without our record of them.
        "sms_in_doubt": int(in_doubt or 0),
        "emails_received": len(mails),
        "email_duplicates": sum(n - 1 for n in mail_ids.values() if n > 1),
        "email_sent_rows": len(email_ids),
        "email_sent_rows_not_received": len(email_ids - set(mail_ids)),
        "replies_posted": len(twilio.replies.answered),
        "replies_replayed": twilio.replayed,
        "replies_answered_200": len(answered),
        "replies_never_answered": len(twilio.replies.answered) - len(answered),
        "replies_stored": sum(inbound.values()),
        "replies_stored_twice": sum(1 for n in inbound.values() if n > 1),
        "replies_answered_not_stored": len(answered - set(inbound)),
        "replies_processed": processed,
        "reply_events": int(reply_events or 0),
        "inbound_outcomes": outcomes,
        "receipts_posted": len(twilio.receipts.answered),
        "receipts_not_answered": sum(
            1 for status in twilio.receipts.answered.values() if not 200 <= status < 300
        ),
        "receipts_status_moved_back": sum(
            1
            for sid, want in twilio.expected_status.items()
            if sid in known_sids and statuses.get(sid) != want
        ),
        "registrations": registration_statuses,
        "places_over_capacity": over_capacity,
        "open_invitation_rows_of_settled_registrations": int(inconsistent or 0),
        "waitlisted_without_rank": int(waitlisted_without_rank or 0),
        "status_differs_from_journal": int(journal_disagrees or 0),
        "confirmed_without_reminders": int(confirmed_without_reminders or 0),
        "declined_with_open_rows": int(declined_with_open_rows or 0),
    }
