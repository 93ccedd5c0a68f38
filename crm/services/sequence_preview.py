"""What the sequence pages show: the lab's sequences with their timing in words and SMS
figures, and a template rendered for a real person of the lab (or a labelled example).

Everything is computed server-side; static/sequences.js only refreshes the SMS counter live.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

import sqlalchemy as sa

from crm.extensions import db
from crm.messaging.encoding import SmsInfo, sms_info, ucs2_characters
from crm.models import FollowUp, Lab, Prospect, Registration, Sequence, SequenceStep
from crm.models.followup import OPEN_STATUSES, SEQUENCE_KIND_LABELS
from crm.services import sequences
from crm.services.followups import live_steps
from crm.services.sequence_editing import (
    EXAMPLE_NAME,
    example_fields,
    lab_registrations,
    template_error,
)
from crm.services.sequences import DAY

CHANNEL_LABELS = {"sms": "SMS", "email": "E-mail", "call": "Appel (tâche pour les appelants)"}
DAYS_LABELS = {
    "invitation": "Nombre de jours après l'inscription",
    "reminders": "Nombre de jours avant le lab (0 : le jour du lab)",
    "thank_you": "Nombre de jours après la fin du lab",
}

# Replacements that keep an SMS in GSM-7 (shown next to the characters that force UCS-2).
GSM7_HINTS = {"’": "'", "«": '"', "»": '"', "ê": "e", "ë": "e", "â": "a", "î": "i", "ï": "i"}
GSM7_HINTS |= {"ô": "o", "û": "u", "ç": "c", "œ": "oe", "…": "...", "–": "-", "—": "-"}
GSM7_HINTS |= {"\u202f": " ", "\u00a0": " "}

_INVISIBLE = {
    "\u202f": "espace fine insécable",
    "\u00a0": "espace insécable",
    " ": "espace normale",
}


def char_label(char: str) -> str:
    """A character as shown to the manager (invisible spaces get a name)."""
    return _INVISIBLE.get(char, f"« {char} »")


def gsm7_hints(characters: list[str]) -> list[str]:
    """'« ê » → « e »' for the characters that have a GSM-7 look-alike."""
    return [f"{char_label(c)} → {char_label(GSM7_HINTS[c])}" for c in characters if c in GSM7_HINTS]


def _span(minutes: int) -> str:
    if minutes % DAY == 0:
        n, unit = minutes // DAY, "jour"
    elif minutes % 60 == 0:
        n, unit = minutes // 60, "heure"
    else:
        n, unit = minutes, "minute"
    return f"{n} {unit}{'s' if n > 1 else ''}"


def timing_words(kind: str, offset_minutes: int, day_time: time | None) -> str:
    """'1 jour après l'inscription', '7 jours avant le lab', 'le jour du lab à 08:30'…"""
    at = f" à {day_time:%H:%M}" if day_time else ""
    trigger = {"invitation": "l'inscription", "reminders": "le lab", "thank_you": "la fin du lab"}
    noun = trigger[kind]
    if offset_minutes == 0:
        if day_time:
            day = "de l'inscription" if kind == "invitation" else "du lab"
            return f"le jour {day}{at}"
        return {"reminders": "au début du lab"}.get(kind, f"dès {noun}")
    if kind == "reminders" and offset_minutes > 0:
        noun = "le début du lab"
    side = "après" if offset_minutes > 0 else "avant"
    return f"{_span(abs(offset_minutes))} {side} {noun}{at}"


def open_rows(lab: Lab, step: SequenceStep) -> int:
    """The step's rows for this lab not sent yet (what a removal would cancel)."""
    query = sa.select(sa.func.count(FollowUp.id)).where(
        FollowUp.step_id == step.id,
        FollowUp.status.in_(OPEN_STATUSES),
        FollowUp.registration_id.in_(lab_registrations(lab.id)),
    )
    return int(db.session.scalar(query) or 0)


@dataclass
class StepRow:
    step: SequenceStep
    timing: str
    sms: SmsInfo | None


@dataclass
class SequenceCard:
    kind: str
    label: str
    sequence: Sequence
    own: bool
    steps: list[StepRow]


def step_sms(step: SequenceStep, fields: dict[str, str]) -> SmsInfo | None:
    if step.channel != "sms" or template_error(step.body):
        return None
    return sms_info(sequences.render(step.body, fields))


def lab_sequences(lab: Lab) -> list[SequenceCard]:
    """The sequence of each kind the lab uses (its own or the default) with its live steps."""
    sample, cards = example_fields(lab), []
    for kind, label in SEQUENCE_KIND_LABELS.items():
        sequence = sequences.sequence_for(kind, lab.id)
        rows = [
            StepRow(
                step, timing_words(kind, step.offset_minutes, step.day_time), step_sms(step, sample)
            )
            for step in live_steps(sequence)
        ]
        cards.append(SequenceCard(kind, label, sequence, sequence.lab_id == lab.id, rows))
    return cards


def lab_step(lab: Lab, step_id: int) -> SequenceStep | None:
    """A live step of a sequence this lab uses (its own, or the default it still uses)."""
    step = db.session.get(SequenceStep, step_id)
    if step is None or step.removed_at is not None:
        return None
    sequence = step.sequence
    if sequence.lab_id == lab.id:
        return step
    if sequence.lab_id is None and sequences.sequence_for(sequence.kind, lab.id).id == sequence.id:
        return step
    return None


# --- Preview ---------------------------------------------------------------------------------


@dataclass
class Preview:
    person: str
    example: bool
    fields: dict[str, str]
    subject: str = ""
    body: str = ""
    sms: SmsInfo | None = None
    ucs2: list[str] | None = None
    hints: list[str] | None = None
    error: str | None = None


def people(lab: Lab, limit: int = 200) -> list[tuple[int, str]]:
    """The lab's first registered people, for the preview's select: (prospect id, name)."""
    query = (
        sa.select(Prospect.id, Prospect.first_name, Prospect.last_name)
        .join(Registration, Registration.prospect_id == Prospect.id)
        .where(Registration.lab_id == lab.id)
        .order_by(Registration.id)
        .limit(limit)
    )
    return [(pid, _name(pid, first, last)) for pid, first, last in db.session.execute(query)]


def _name(prospect_id: int, first: str | None, last: str | None) -> str:
    return f"{first or ''} {last or ''}".strip() or f"Personne n° {prospect_id}"


def preview_registration(lab: Lab, prospect_id: int | None) -> Registration | None:
    """The registration to preview with: that prospect's (LookupError when not in this lab),
    else the lab's first; None when the lab has nobody yet."""
    query = sa.select(Registration).where(Registration.lab_id == lab.id).order_by(Registration.id)
    if prospect_id is not None:
        query = query.where(Registration.prospect_id == prospect_id)
    registration = db.session.scalars(query.limit(1)).first()
    if registration is None and prospect_id is not None:
        raise LookupError(prospect_id)
    return registration


def preview(
    lab: Lab, registration: Registration | None, channel: str, subject: str, body: str
) -> Preview:
    """The template rendered for a real person (or the example when the lab has nobody)."""
    if registration is None:
        shown = Preview(f"{' '.join(EXAMPLE_NAME)} (exemple)", True, example_fields(lab))
    else:
        prospect = registration.prospect
        name = _name(prospect.id, prospect.first_name, prospect.last_name)
        shown = Preview(name, False, sequences.fields_for(registration, prospect, lab))
    body = body.replace("\r\n", "\n")
    if channel == "call":
        shown.body = body
        return shown
    error = template_error(body) or (template_error(subject) if channel == "email" else None)
    if error:
        shown.error = error
        return shown
    shown.body = sequences.render(body, shown.fields)
    shown.subject = sequences.render(subject, shown.fields) if channel == "email" else ""
    if channel == "sms":
        shown.sms = sms_info(shown.body)
        shown.ucs2 = ucs2_characters(shown.body)
        shown.hints = gsm7_hints(shown.ucs2)
    return shown
