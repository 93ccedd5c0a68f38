"""Retention: people are anonymised RETENTION_DAYS after the last contact that came from them.

The CNIL's reference for prospects is 3 years (1095 days) after the last contact initiated by
the person: an SMS reply, a link answer, a consent they gave, a visit to a lab
(`Prospect.last_person_contact_at`, or the creation date when they never answered). Nobody
registered in a lab still to come is anonymised. A daily job (workers.cron) runs `run`;
managers see who is due within WARNING_DAYS and can act (a person who answers is off the list).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from crm.extensions import db
from crm.models import Lab, Prospect, Registration
from crm.services import erasure
from crm.timeutil import utcnow

log = logging.getLogger(__name__)

DEFAULT_DAYS = 1095
WARNING_DAYS = 30
JOB_LABEL = "tâche quotidienne de conservation"


def retention_days() -> int:
    return int(current_app.config.get("RETENTION_DAYS", DEFAULT_DAYS))


def _last_contact() -> sa.ColumnElement[datetime]:
    return sa.func.coalesce(Prospect.last_person_contact_at, Prospect.created_at)


def _candidates(before: datetime, now: datetime) -> sa.Select[tuple[Prospect]]:
    """Not erased, last contact before `before`, and no registration in a lab not over."""
    upcoming = (
        sa.select(Registration.id)
        .join(Lab, Lab.id == Registration.lab_id)
        .where(Registration.prospect_id == Prospect.id, Lab.ends_at > now)
    )
    return sa.select(Prospect).where(
        Prospect.erased_at.is_(None), _last_contact() < before, ~upcoming.exists()
    )


def due(now: datetime | None = None) -> list[Prospect]:
    """Who the job anonymises if it runs at `now`."""
    now = now or utcnow()
    before = now - timedelta(days=retention_days())
    return list(db.session.scalars(_candidates(before, now).order_by(Prospect.id)))


@dataclass(frozen=True)
class Upcoming:
    prospect: Prospect
    last_contact: datetime
    anonymised_on: datetime  # the first run at or after this instant anonymises them


def upcoming(now: datetime | None = None, days: int = WARNING_DAYS) -> list[Upcoming]:
    """People the job will anonymise within `days` if nothing changes, soonest first."""
    now = now or utcnow()
    period = timedelta(days=retention_days())
    query = _candidates(now + timedelta(days=days) - period, now).order_by(
        _last_contact(), Prospect.id
    )
    found = []
    for prospect in db.session.scalars(query):
        last = prospect.last_person_contact_at or prospect.created_at
        found.append(Upcoming(prospect, last, max(last + period, now)))
    return found


def run(now: datetime | None = None, dry_run: bool = False) -> list[int]:
    """Anonymise everyone due (one commit per person: a crash loses nothing done, a second
    run finds only those left). Returns their ids."""
    now = now or utcnow()
    days = retention_days()
    done = []
    for prospect in due(now):
        if dry_run:
            done.append(prospect.id)
            continue
        last = prospect.last_person_contact_at or prospect.created_at
        erasure.erase(
            prospect,
            None,
            action="retention.anonymised",
            actor_label=JOB_LABEL,
            detail={"duree_jours": days, "dernier_contact": last.date().isoformat()},
            now=now,
            suppress_contacts=False,
        )
        db.session.commit()
        done.append(prospect.id)
    if done and not dry_run:
        log.info("retention: %s people anonymised", len(done))
    return done
