"""The default sequences shipped in code, and the rendering of their French templates.

Templates use `{field}` placeholders from a fixed list (FIELDS): plain substitution, no
attribute access and no expressions, so a template typed by a manager cannot read anything
else. Every message says who sends it and how to stop: `{lien}` is the person's short signed
link (PUBLIC_BASE_URL/r/<token>), the only way to answer an alphanumeric SMS sender.
SMS templates avoid « » (outside GSM-7: one of them cuts a segment from 160 to 70 characters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from functools import lru_cache
from html import escape

import sqlalchemy as sa
from flask import current_app
from itsdangerous import URLSafeSerializer

from crm.extensions import db
from crm.models import Lab, Prospect, Registration, Sequence, SequenceStep
from crm.timeutil import format_local, format_local_time, to_local

DAY = 24 * 60
LINK_SALT = "registration-link"
FIELDS = ("prenom", "nom", "lab", "date", "heure", "lieu", "lien")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
# The sender named by the shipped texts ("l'équipe Open Lab"); CRM_SENDER_NAME replaces it.
DEFAULT_SENDER_NAME = "Open Lab"
SIGNATURE = f"l'équipe {DEFAULT_SENDER_NAME}"


class TemplateError(ValueError):
    """A template uses an unknown field; the message is in French."""


@dataclass(frozen=True)
class StepSpec:
    channel: str
    offset_minutes: int
    body: str
    subject: str = ""
    day_time: time | None = None


_STOP_SMS = "Répondre ou ne plus recevoir de messages : {lien}"
_STOP_EMAIL = "Pour répondre ou ne plus recevoir nos messages, utilisez ce lien personnel : {lien}"

DEFAULTS: dict[str, tuple[str, list[StepSpec]]] = {
    "invitation": (
        "Invitation (par défaut)",
        [
            StepSpec(
                "sms",
                1 * DAY,
                'Bonjour {prenom}, l\'équipe Open Lab vous invite au lab "{lab}" le {date}. '
                + _STOP_SMS,
            ),
            StepSpec(
                "email",
                3 * DAY,
                "Bonjour {prenom},\n\nNous organisons le lab « {lab} » le {date}, {lieu}. "
                "Votre expérience nous serait précieuse.\n\n" + _STOP_EMAIL + "\n\n" + SIGNATURE,
                subject="Invitation au lab « {lab} »",
            ),
            StepSpec("call", 5 * DAY, "Relance téléphonique de l'invitation"),
            StepSpec(
                "sms",
                8 * DAY,
                'Bonjour {prenom}, dernier rappel de l\'équipe Open Lab pour le lab "{lab}" '
                "le {date}. " + _STOP_SMS,
            ),
        ],
    ),
    "reminders": (
        "Rappels avant le lab (par défaut)",
        [
            StepSpec(
                "email",
                -7 * DAY,
                "Bonjour {prenom},\n\nNous vous attendons au lab « {lab} » le {date}, {lieu}.\n\n"
                + _STOP_EMAIL
                + "\n\n"
                + SIGNATURE,
                subject="Rappel : lab « {lab} » le {date}",
            ),
            StepSpec(
                "sms",
                -2 * DAY,
                'Bonjour {prenom}, l\'équipe Open Lab vous attend au lab "{lab}" le {date}. '
                + _STOP_SMS,
            ),
            StepSpec(
                "sms",
                0,
                "Bonjour {prenom}, c'est aujourd'hui à {heure} : lab \"{lab}\", {lieu}. "
                "L'équipe Open Lab. " + _STOP_SMS,
                day_time=time(8, 30),
            ),
        ],
    ),
    "thank_you": (
        "Remerciement (par défaut)",
        [
            StepSpec(
                "email",
                1 * DAY,
                "Bonjour {prenom},\n\nMerci d'avoir participé au lab « {lab} ». "
                "Vos remarques vont nous aider.\n\n" + _STOP_EMAIL + "\n\n" + SIGNATURE,
                subject="Merci pour votre participation au lab « {lab} »",
            ),
        ],
    ),
}


def sender_name() -> str:
    return (current_app.config.get("CRM_SENDER_NAME") or DEFAULT_SENDER_NAME).strip()


def with_sender(text: str) -> str:
    """A shipped text (default steps, SMS replies, place offers) naming the configured sender,
    before its fields are filled in (a lab's title is never rewritten)."""
    return text.replace(DEFAULT_SENDER_NAME, sender_name())


def sequence_for(kind: str, lab_id: int | None) -> Sequence:
    """The lab's own sequence of that kind if it has one, else the default (created once)."""
    if kind not in DEFAULTS:
        raise ValueError(f"unknown sequence kind {kind!r}")
    if lab_id is not None:
        own = db.session.scalar(
            sa.select(Sequence)
            .where(Sequence.lab_id == lab_id, Sequence.kind == kind)
            .order_by(Sequence.id)  # two copies made at once on SQLite: always the same one
        )
        if own is not None:
            return own
    return default_sequence(kind)


def default_sequence(kind: str) -> Sequence:
    """The shipped default, created on first use (idempotent)."""
    query = sa.select(Sequence).where(Sequence.lab_id.is_(None), Sequence.kind == kind)
    # Two processes creating it at once leave two: the oldest is used, and follow-ups are
    # matched by kind and position (crm.services.followups), so the copy does no harm.
    existing = db.session.scalar(query.order_by(Sequence.id))
    if existing is not None:
        return existing
    name, specs = DEFAULTS[kind]
    sequence = Sequence(lab_id=None, kind=kind, name=name)
    for position, spec in enumerate(specs, start=1):
        sequence.steps.append(
            SequenceStep(
                position=position,
                channel=spec.channel,
                offset_minutes=spec.offset_minutes,
                day_time=spec.day_time,
                subject=with_sender(spec.subject),
                body=with_sender(spec.body),
            )
        )
    db.session.add(sequence)
    db.session.flush()
    return sequence


@lru_cache(maxsize=8)
def _link_serializer(secret_key: str) -> URLSafeSerializer:
    """Built once per key (it derives its signer from the key on every use anyway)."""
    return URLSafeSerializer(secret_key, salt=LINK_SALT)


def personal_link(registration_id: int) -> str:
    """PUBLIC_BASE_URL/r/<token>, the token a signed registration id (page: replies issue)."""
    serializer = _link_serializer(current_app.config["SECRET_KEY"])
    base = str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/")
    return f"{base}/r/{serializer.dumps(registration_id)}"


def fields_for(registration: Registration, prospect: Prospect, lab: Lab) -> dict[str, str]:
    starts = to_local(lab.starts_at)
    return {
        "prenom": prospect.first_name or "",
        "nom": prospect.last_name or "",
        "lab": lab.title,
        "date": format_local(lab.starts_at, with_day=True) if starts else "",
        "heure": format_local_time(lab.starts_at),
        "lieu": lab.venue or "lieu communiqué prochainement",
        "lien": personal_link(registration.id),
    }


def render(template: str, fields: dict[str, str]) -> str:
    """Replace each `{field}`; anything else between braces raises TemplateError."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in fields:
            raise TemplateError(f"Champ inconnu dans le modèle : {{{name}}}.")
        return fields[name]

    return _PLACEHOLDER.sub(substitute, template)


def email_html(text: str) -> str:
    """The HTML part of an e-mail from its rendered text: escaped paragraphs, every link
    clickable (the personal link among them). No markup from the template gets through."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        html = escape(block).replace("\n", "<br>\n")
        html = re.sub(r"(https?://[^\s<]+)", r'<a href="\1">\1</a>', html)
        paragraphs.append(f"<p>{html}</p>")
    body = "\n".join(paragraphs)
    return f'<!doctype html>\n<html lang="fr"><body>\n{body}\n</body></html>\n'
