"""A manager edits a lab's follow-up sequences: the rules (pure functions, table-tested), the
lab's own copy of a default sequence and the step changes (the pages: sequence_preview).

A lab uses the shipped default sequence of each kind until a manager personalises it: the
default's live steps are copied, same positions, into a Sequence with `lab_id` set, and the
lab's still-`scheduled` follow-up rows move to the copied step of the same position (rows in
any other status keep their step: they are the history of what was sent). Only the lab's own
copy is editable. A removed step keeps its row (`removed_at`): follow-ups reference it.

Every change writes a "sequence.changed" event. The callers commit.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import time
from typing import Any

import sqlalchemy as sa

from crm.extensions import db
from crm.messaging.encoding import sms_info
from crm.models import Event, FollowUp, Lab, Prospect, Registration, Sequence, SequenceStep, User
from crm.models.followup import SEQUENCE_KIND_LABELS, STEP_CHANNELS
from crm.services import followups, sequences
from crm.services.followups import live_steps
from crm.services.permissions import managers_only
from crm.services.sequences import DAY, DEFAULT_SENDER_NAME, FIELDS
from crm.timeutil import to_local, utcnow

MAX_DAYS = 90
MAX_SMS_SEGMENTS = 6
MAX_BODY = 5000
MAX_SUBJECT = 255
EVENT_KIND = "sequence.changed"
EXAMPLE_NAME = ("Camille", "Martin")
EXAMPLE_REGISTRATION_ID = 100_000  # a realistic length for the signed link of the example
STEP_FIELDS = ("channel", "offset_minutes", "day_time", "subject", "body")


class EditError(ValueError):
    """A refused change: `errors` maps a form field ("" for the whole form) to a French text."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(" ".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class StepInput:
    """A step as typed: a number of days from the trigger (its direction given by the kind)."""

    channel: str
    days: int
    day_time: time | None = None
    subject: str = ""
    body: str = ""


# --- Pure rules ------------------------------------------------------------------------------


def offset_for(kind: str, days: int) -> int:
    """Days typed in the form to signed minutes: reminders count back from the lab start."""
    return -days * DAY if kind == "reminders" else days * DAY


def days_for(kind: str, offset_minutes: int) -> int:
    days = round(offset_minutes / DAY)
    return -days if kind == "reminders" else days


def template_error(template: str) -> str | None:
    """Unbalanced braces or an unknown field, in French; None when the template is fine."""
    depth = 0
    for char in template:
        if char == "{" and depth:
            return _UNCLOSED
        if char == "}" and not depth:
            return (
                "Accolade « } » sans accolade ouvrante : écrivez chaque champ entre accolades, "
                "par exemple {prenom}."
            )
        depth = {"{": 1, "}": 0}.get(char, depth)
    if depth:
        return _UNCLOSED
    for name in placeholders(template):
        if name not in FIELDS:
            possible = ", ".join(f"{{{f}}}" for f in FIELDS)
            return f"Champ inconnu dans le modèle : {{{name}}}. Champs possibles : {possible}."
    return None


_UNCLOSED = (
    "Accolade « { » non refermée : écrivez chaque champ entre accolades, par exemple {prenom}."
)


def placeholders(template: str) -> list[str]:
    return sequences._PLACEHOLDER.findall(template)


def timing_errors(
    kind: str, offset_minutes: int, day_time: time | None, lab_start: time | None = None
) -> dict[str, str]:
    """The timing rules of each kind; `lab_start` is the lab's local start time."""
    if abs(offset_minutes) > MAX_DAYS * DAY:
        return {"days": f"Le délai doit être de {MAX_DAYS} jours au plus."}
    if kind == "invitation" and offset_minutes < 0:
        return {
            "days": "Une relance d'invitation part après l'inscription : saisissez un nombre "
            "de jours positif ou nul."
        }
    if kind == "thank_you" and offset_minutes < 0:
        return {
            "days": "Un remerciement part après la fin du lab : saisissez un nombre de jours "
            "positif ou nul."
        }
    if kind == "reminders" and offset_minutes > 0:
        return {
            "days": "Un rappel part avant le lab ou le jour même : saisissez le nombre de jours "
            "avant le lab (0 pour le jour du lab)."
        }
    if kind == "reminders" and offset_minutes == 0:
        if day_time is None:
            return {
                "day_time": "Un rappel le jour du lab demande une heure d'envoi avant le début "
                "du lab, par exemple 08:30."
            }
        if lab_start is not None and day_time >= lab_start:
            return {
                "day_time": f"L'heure d'envoi doit être avant le début du lab ({lab_start:%H:%M})."
            }
    return {}


def one_way_error(sender: str) -> str:
    return (
        f"Les SMS partent d'un expéditeur alphanumérique (« {sender} ») : personne ne peut y "
        "répondre. Ajoutez {lien}, le lien personnel de la personne : c'est sa seule façon de "
        "répondre ou de ne plus recevoir de messages."
    )


STOP_WORD = re.compile(r"(?<![\w])STOP(?![\w])")


def stop_error(channel: str, body: str, one_way_sender: str | None) -> str | None:
    """Every message says how to stop: the personal link {lien} (its page offers « Ne plus me
    contacter »), or, for an SMS from a sender people can reply to, the word STOP."""
    if "lien" in placeholders(body):
        return None
    if channel == "sms" and one_way_sender:
        return one_way_error(one_way_sender)
    if channel == "sms":
        if STOP_WORD.search(body):
            return None
        return (
            "Chaque SMS dit comment ne plus en recevoir : ajoutez {lien}, le lien personnel "
            "de la personne (il propose « Ne plus me contacter »), ou le mot STOP, par "
            "exemple « Répondez STOP pour ne plus recevoir de messages »."
        )
    return (
        "Chaque e-mail dit comment ne plus en recevoir : ajoutez {lien}, le lien personnel "
        "de la personne (il propose « Ne plus me contacter »)."
    )


def _squashed(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").split()).casefold()


def identity_error(text: str, sender_name: str | None) -> str | None:
    """Every message says who sends it: the sender's name (CRM_SENDER_NAME, « Open Lab » by
    default, as in « l'équipe Open Lab » of the default templates) appears in the text."""
    name = (sender_name or DEFAULT_SENDER_NAME).strip()
    if _squashed(name) in _squashed(text):
        return None
    return (
        f"Chaque message dit qui l'envoie : ajoutez le nom de l'équipe, par exemple "
        f"« L'équipe {name} »."
    )


def _body_error(
    data: StepInput,
    one_way_sender: str | None,
    sample: dict[str, str],
    sender_name: str | None = None,
) -> str | None:
    body = data.body
    if data.channel == "call":
        names = placeholders(body)
        if names:
            return (
                "Les consignes d'appel sont lues telles quelles par les appelants : "
                f"retirez {{{names[0]}}}."
            )
        return None
    if not body.strip():
        return "Saisissez le texte du message."
    if len(body) > MAX_BODY:
        return f"Le message ne doit pas dépasser {MAX_BODY} caractères."
    error = template_error(body) or stop_error(data.channel, body, one_way_sender)
    error = error or identity_error(f"{data.subject}\n{body}", sender_name)
    if error or data.channel != "sms":
        return error
    info = sms_info(sequences.render(body, sample))
    if info.segments > MAX_SMS_SEGMENTS:
        return (
            f"Ce SMS ferait {info.segments} segments ({info.length} caractères en "
            f"{info.encoding}) : {MAX_SMS_SEGMENTS} au plus. Raccourcissez-le."
        )
    return None


def step_errors(
    kind: str,
    data: StepInput,
    *,
    one_way_sender: str | None,
    sample: dict[str, str],
    lab_start: time | None = None,
    sender_name: str | None = None,
) -> dict[str, str]:
    """Every refusal for a typed step, one per form field. `one_way_sender` is the
    alphanumeric sender's name (None when people can reply); `sample` the example fields
    an SMS's length is estimated with; `sender_name` the team every message must name
    (DEFAULT_SENDER_NAME when None)."""
    errors: dict[str, str] = {}
    if data.channel not in STEP_CHANNELS:
        return {"channel": "Choisissez un canal : SMS, e-mail ou appel."}
    errors.update(timing_errors(kind, offset_for(kind, data.days), data.day_time, lab_start))
    if data.channel == "email":
        if not data.subject.strip():
            errors["subject"] = "Saisissez l'objet de l'e-mail."
        elif len(data.subject) > MAX_SUBJECT:
            errors["subject"] = f"L'objet ne doit pas dépasser {MAX_SUBJECT} caractères."
        elif "\n" in data.subject or "\r" in data.subject:
            errors["subject"] = "L'objet tient sur une seule ligne."
        elif error := template_error(data.subject):
            errors["subject"] = error
    if error := _body_error(data, one_way_sender, sample, sender_name):
        errors["body"] = error
    return errors


def step_version(step: SequenceStep) -> str:
    """A marker of the step's current content: a stale form carries an older one."""
    parts = [str(getattr(step, name)) for name in STEP_FIELDS] + [str(step.removed_at)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]


def normalised(data: StepInput) -> StepInput:
    """Browsers send CRLF line ends: an SMS counts every character, so keep LF only."""
    body = data.body.replace("\r\n", "\n").replace("\r", "\n").strip()
    subject = data.subject.strip() if data.channel == "email" else ""
    return StepInput(data.channel, data.days, data.day_time, subject, body)


# --- The lab's sequences ---------------------------------------------------------------------

NOT_OWN = (
    "Cette étape fait partie du modèle par défaut, commun à tous les open labs : "
    "personnalisez d'abord la séquence pour cet open lab, puis modifiez sa copie."
)
STALE = (
    "Cette étape a été modifiée entre-temps par quelqu'un d'autre : rien n'a été enregistré. "
    "Sa version actuelle est affichée ci-dessous ; reportez-y vos changements puis enregistrez."
)
GONE = "Cette étape a été supprimée entre-temps : rien n'a été enregistré."


class StaleError(EditError):
    """The step changed since the form was shown."""


def example_fields(lab: Lab, registration_id: int = EXAMPLE_REGISTRATION_ID) -> dict[str, str]:
    """The lab's fields with an example person (not stored): to estimate an SMS's length."""
    first, last = EXAMPLE_NAME
    person = Prospect(first_name=first, last_name=last)
    return sequences.fields_for(Registration(id=registration_id), person, lab)


def lab_start_time(lab: Lab) -> time | None:
    local = to_local(lab.starts_at)
    return local.time().replace(tzinfo=None) if local else None


def own_sequence(lab_id: int, kind: str) -> Sequence | None:
    query = sa.select(Sequence).where(Sequence.lab_id == lab_id, Sequence.kind == kind)
    return db.session.scalar(query.order_by(Sequence.id))


@managers_only
def personalise(lab: Lab, kind: str, actor: User | None) -> tuple[Sequence, int | None]:
    """Copy the default sequence for this lab (idempotent): (the copy, the scheduled rows
    moved to it, or None when the lab already had its own copy)."""
    db.session.execute(sa.select(Lab.id).where(Lab.id == lab.id).with_for_update())
    own = own_sequence(lab.id, kind)
    if own is not None:
        return own, None
    default = sequences.default_sequence(kind)
    copy = Sequence(
        lab_id=lab.id, kind=kind, name=f"{SEQUENCE_KIND_LABELS[kind]} — {lab.title}"[:120]
    )
    for step in live_steps(default):
        values = {name: getattr(step, name) for name in STEP_FIELDS}
        copy.steps.append(SequenceStep(position=step.position, **values))
    db.session.add(copy)
    db.session.flush()
    moved = sum(_repoint(lab.id, kind, step) for step in copy.steps)
    data = {"action": "personnalisation", "sequence": kind, "sequence_id": copy.id}
    _event(lab, actor, {**data, "steps": len(copy.steps), "repointed": moved})
    return copy, moved


def lab_registrations(lab_id: int) -> sa.Select[Any]:
    return sa.select(Registration.id).where(Registration.lab_id == lab_id)


def _repoint(lab_id: int, kind: str, step: SequenceStep) -> int:
    """Move the lab's scheduled rows on the default step of this position to `step`."""
    defaults = (
        sa.select(SequenceStep.id)
        .join(Sequence, Sequence.id == SequenceStep.sequence_id)
        .where(
            Sequence.lab_id.is_(None),
            Sequence.kind == kind,
            SequenceStep.position == step.position,
        )
    )
    result = db.session.execute(
        sa.update(FollowUp)
        .where(
            FollowUp.status == "scheduled",
            FollowUp.step_id.in_(defaults),
            FollowUp.registration_id.in_(lab_registrations(lab_id)),
        )
        .values(step_id=step.id, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _locked(step_id: int) -> SequenceStep:
    query = sa.select(SequenceStep).where(SequenceStep.id == step_id).with_for_update()
    return db.session.execute(query.execution_options(populate_existing=True)).scalar_one()


def errors_for(lab: Lab, kind: str, data: StepInput, one_way_sender: str | None) -> dict[str, str]:
    """step_errors with this lab's example fields and start time (data already normalised)."""
    sample, start = example_fields(lab), lab_start_time(lab)
    sender_name = sequences.sender_name()
    return step_errors(
        kind,
        data,
        one_way_sender=one_way_sender,
        sample=sample,
        lab_start=start,
        sender_name=sender_name,
    )


def _check(lab: Lab, kind: str, data: StepInput, one_way_sender: str | None) -> dict[str, Any]:
    """Refuse the step (EditError) or return its column values."""
    errors = errors_for(lab, kind, data, one_way_sender)
    if errors:
        raise EditError(errors)
    return {
        "channel": data.channel,
        "offset_minutes": offset_for(kind, data.days),
        "day_time": data.day_time,
        "subject": data.subject,
        "body": data.body,
    }


@managers_only
def update_step(
    lab: Lab,
    step: SequenceStep,
    data: StepInput,
    version: str,
    actor: User | None,
    *,
    one_way_sender: str | None,
) -> list[str]:
    """Save a step of the lab's own sequence; returns the changed fields (may be empty)."""
    step = _locked(step.id)
    if step.sequence.lab_id != lab.id:
        raise EditError({"": NOT_OWN})
    if step.removed_at is not None:
        raise EditError({"": GONE})
    if version != step_version(step):
        raise StaleError({"": STALE})
    values = _check(lab, step.sequence.kind, normalised(data), one_way_sender)
    changed = [name for name in STEP_FIELDS if getattr(step, name) != values[name]]
    before = {name: _plain(getattr(step, name)) for name in changed}
    for name in changed:
        setattr(step, name, values[name])
    if changed:
        db.session.flush()
        after = {name: _plain(values[name]) for name in changed}
        _event(
            lab,
            actor,
            _step_data("etape_modifiee", step, changed=changed, before=before, after=after),
        )
    return changed


@managers_only
def add_step(
    lab: Lab, kind: str, data: StepInput, actor: User | None, *, one_way_sender: str | None
) -> SequenceStep:
    """A new last step of the lab's own sequence (rows are created for people who start the
    sequence from now on: registrations already under way keep their steps)."""
    db.session.execute(sa.select(Lab.id).where(Lab.id == lab.id).with_for_update())
    sequence = own_sequence(lab.id, kind)
    if sequence is None:
        raise EditError({"": NOT_OWN})
    values = _check(lab, kind, normalised(data), one_way_sender)
    last = sa.select(sa.func.max(SequenceStep.position)).where(
        SequenceStep.sequence_id == sequence.id
    )
    step = SequenceStep(
        sequence_id=sequence.id, position=(db.session.scalar(last) or 0) + 1, **values
    )
    db.session.add(step)
    db.session.flush()
    _event(lab, actor, _step_data("etape_ajoutee", step, kind=kind))
    return step


@managers_only
def remove_step(lab: Lab, step: SequenceStep, actor: User | None) -> int:
    """Mark the step removed and cancel its rows not sent yet; returns how many (idempotent)."""
    step = _locked(step.id)
    if step.sequence.lab_id != lab.id:
        raise EditError({"": NOT_OWN})
    if step.removed_at is not None:
        return 0
    now = utcnow()
    step.removed_at = now
    who = actor.display_name if actor else "un responsable"
    cancelled = followups.cancel_open_where(
        f"Étape supprimée de la séquence par {who}.",
        FollowUp.step_id == step.id,
        FollowUp.registration_id.in_(lab_registrations(lab.id)),
    )
    _event(lab, actor, _step_data("etape_supprimee", step, cancelled=cancelled))
    return cancelled


def _plain(value: Any) -> Any:
    return value.strftime("%H:%M") if isinstance(value, time) else value


def _step_data(action: str, step: SequenceStep, **extra: Any) -> dict[str, Any]:
    kind = extra.pop("kind", None) or step.sequence.kind
    data = {"action": action, "sequence": kind, "step_id": step.id, "position": step.position}
    return {**data, **extra}


def _event(lab: Lab, actor: User | None, data: dict[str, Any]) -> None:
    db.session.add(
        Event(kind=EVENT_KIND, lab_id=lab.id, actor_id=actor.id if actor else None, data=data)
    )
