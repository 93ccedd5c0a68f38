"""A manager's control of a lab's automated follow-ups: what is scheduled, sent, failed or
waiting for review; pausing and resuming; the lab's own send window; resolving the rows a
worker left in doubt (`unknown`), which are never sent again automatically.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import contains_eager

from crm.extensions import db
from crm.models import Event, FollowUp, Lab, Prospect, Registration, Sequence, SequenceStep, User
from crm.services import followups
from crm.services.permissions import managers_only
from crm.services.window import DAY_NAMES, Window, is_open, next_opening, send_window
from crm.timeutil import utcnow


@dataclass(frozen=True)
class Tab:
    slug: str
    label: str
    statuses: tuple[str, ...]
    newest_first: bool  # history tabs show the latest first, the schedule the next first


TABS = (
    Tab("programmes", "Programmés", ("scheduled", "queued", "sending"), False),
    Tab("envoyes", "Envoyés", ("sent", "delivered"), True),
    Tab("echecs", "Échecs", ("failed",), True),
    Tab("a-verifier", "À vérifier", ("unknown",), True),
    Tab("non-envoyes", "Non envoyés", ("skipped", "cancelled"), True),
)
TABS_BY_SLUG = {tab.slug: tab for tab in TABS}
PER_PAGE = 50
REVIEW_OUTCOMES = {
    "sent": ("sent", "Vérifié par {name} : le message est bien parti."),
    "not_sent": ("failed", "Vérifié par {name} : le message n'est pas parti."),
}


class SendingError(ValueError):
    """A refused change; `field` names the form field, the message is in French."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --- What the manager sees -------------------------------------------------------------------


def _lab_rows(lab_id: int) -> sa.Select[Any]:
    return (
        sa.select(FollowUp)
        .join(Registration, Registration.id == FollowUp.registration_id)
        .where(Registration.lab_id == lab_id)
    )


def status_counts(lab_id: int) -> dict[str, int]:
    query = (
        sa.select(FollowUp.status, sa.func.count(FollowUp.id))
        .join(Registration, Registration.id == FollowUp.registration_id)
        .where(Registration.lab_id == lab_id)
        .group_by(FollowUp.status)
    )
    return {status: int(count) for status, count in db.session.execute(query)}


def tab_counts(counts: dict[str, int]) -> dict[str, int]:
    return {tab.slug: sum(counts.get(s, 0) for s in tab.statuses) for tab in TABS}


def tab_query(lab_id: int, tab: Tab) -> sa.Select[Any]:
    """The tab's rows with their person and step loaded (one query per page)."""
    moment = FollowUp.sent_at if tab.slug == "envoyes" else FollowUp.updated_at
    order = (moment.desc(), FollowUp.id.desc()) if tab.newest_first else (FollowUp.due_at,)
    return (
        _lab_rows(lab_id)
        .join(Prospect, Prospect.id == Registration.prospect_id)
        .join(SequenceStep, SequenceStep.id == FollowUp.step_id)
        .join(Sequence, Sequence.id == SequenceStep.sequence_id)
        .where(FollowUp.status.in_(tab.statuses))
        .options(
            contains_eager(FollowUp.registration).contains_eager(Registration.prospect),
            contains_eager(FollowUp.step).contains_eager(SequenceStep.sequence),
        )
        .order_by(*order, FollowUp.id)
    )


# --- Pause and resume ------------------------------------------------------------------------


@managers_only
def pause(lab: Lab, actor: User) -> bool:
    """Stop sending the lab's follow-ups (rows stay scheduled); False when already paused."""
    if lab.sending_paused:
        return False
    lab.sending_paused = True
    _event("lab.sending_paused", lab, actor, {})
    return True


@managers_only
def resume(lab: Lab, actor: User) -> int:
    """Sending resumes; returns how many rows are overdue and will go at the next pass
    (each one re-checked at send time: window, relevance, permission, cap)."""
    if not lab.sending_paused:
        return 0
    lab.sending_paused = False
    overdue = int(
        db.session.scalar(
            sa.select(sa.func.count(FollowUp.id))
            .join(Registration, Registration.id == FollowUp.registration_id)
            .where(
                Registration.lab_id == lab.id,
                FollowUp.status == "scheduled",
                FollowUp.due_at <= utcnow(),
            )
        )
        or 0
    )
    _event("lab.sending_resumed", lab, actor, {"overdue": overdue})
    return overdue


# --- The lab's send window -------------------------------------------------------------------


def check_window(first_day: int, last_day: int, start: time, end: time) -> Window:
    """Days are 1 (Monday) to 7 (Sunday); refused values raise SendingError."""
    if not (1 <= first_day <= 7 and 1 <= last_day <= 7):
        raise SendingError("Choisissez des jours de la semaine dans la liste.", "first_day")
    if last_day < first_day:
        raise SendingError(
            f"Le dernier jour ({DAY_NAMES[last_day - 1]}) doit venir après le premier "
            f"({DAY_NAMES[first_day - 1]}) dans la semaine.",
            "last_day",
        )
    if end <= start:
        raise SendingError("L'heure de fin doit être après l'heure de début.", "end")
    if (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute) < 60:
        raise SendingError("La fenêtre doit durer au moins une heure.", "end")
    return Window(frozenset(range(first_day - 1, last_day)), start, end)


@managers_only
def set_window(lab: Lab, window: Window | None, actor: User) -> int:
    """Give the lab its own send window (None: back to the configured one). Scheduled rows
    now outside the window move to its next opening; a reminder that would then arrive
    after the lab start is skipped. Returns how many rows moved or were skipped."""
    before = send_window(lab).describe()
    if window is None:
        lab.send_days = lab.send_hours = None
    else:
        days = sorted(window.days)
        lab.send_days = f"{days[0] + 1}-{days[-1] + 1}"
        lab.send_hours = f"{window.start:%H:%M}-{window.end:%H:%M}"
    effective = send_window(lab)
    changed = _fit_schedule(lab, effective)
    _event(
        "lab.send_window",
        lab,
        actor,
        {"before": before, "after": effective.describe(), "moved": changed},
    )
    return changed


def _fit_schedule(lab: Lab, window: Window) -> int:
    query = _lab_rows(lab.id).where(FollowUp.status == "scheduled")
    changed = 0
    for row in db.session.scalars(query.options(contains_eager(FollowUp.registration))):
        if is_open(row.due_at, window):
            continue
        row.due_at = next_opening(row.due_at, window)
        if row.step.sequence.kind == "reminders":
            reason = followups.reminder_refusal(row.due_at, lab.starts_at, utcnow())
            if reason:
                row.status, row.reason = "skipped", reason
        changed += 1
    return changed


# --- Review of rows a worker left in doubt ---------------------------------------------------


@managers_only
def review(lab: Lab, followup_id: int, outcome: str, actor: User) -> FollowUp:
    """Record what the manager found (at the provider) for an `unknown` row."""
    if outcome not in REVIEW_OUTCOMES:
        raise SendingError("Choisissez « Envoyé » ou « Non envoyé ».")
    row = db.session.scalar(_lab_rows(lab.id).where(FollowUp.id == followup_id))
    if row is None:
        raise LookupError(followup_id)
    status, template = REVIEW_OUTCOMES[outcome]
    reason = template.format(name=actor.name or actor.email)
    values: dict[str, Any] = {"status": status, "reason": reason, "updated_at": utcnow()}
    if status == "sent":
        values["sent_at"] = row.sent_at or row.updated_at
    result = db.session.execute(
        sa.update(FollowUp)
        .where(FollowUp.id == row.id, FollowUp.status == "unknown")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise SendingError("Ce message a déjà été vérifié par quelqu'un d'autre.")
    db.session.add(
        Event(
            kind="followup.reviewed",
            actor_id=actor.id,
            prospect_id=row.registration.prospect_id,
            lab_id=lab.id,
            registration_id=row.registration_id,
            reason=reason,
            data={"followup_id": row.id, "status": status},
        )
    )
    db.session.flush()
    db.session.refresh(row)
    return row


def _event(kind: str, lab: Lab, actor: User, data: dict[str, Any]) -> None:
    db.session.add(Event(kind=kind, lab_id=lab.id, actor_id=actor.id, data=data))
