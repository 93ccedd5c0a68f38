"""RQ jobs: small functions taking ids, safe to run twice (RQ delivers at least once)."""

from __future__ import annotations

from functools import cache
from typing import Any

from flask import Flask

from crm import create_app


@cache
def worker_app() -> Flask:
    """One app per worker process, configured from the environment like the web app."""
    return create_app()


def dispatch_due() -> dict[str, int | str]:
    """The periodic dispatcher: run by `rq cron workers/cron.py` every 30 seconds."""
    from crm.services import dispatcher

    with worker_app().app_context():
        return dispatcher.run()


def refresh_dashboards() -> int:
    """Recompute the dashboard figures pages asked for recently (`rq cron`, every 30 s)."""
    from crm.services import funnel

    with worker_app().app_context():
        return funnel.refresh_wanted()


def send_followup(followup_id: int) -> str:
    """Send one claimed follow-up (enqueued by the dispatcher as job "followup-<id>")."""
    from crm.services import sending

    with worker_app().app_context():
        return sending.send(followup_id)


def send_offer(offer_id: int) -> str:
    """Tell the next person on a waiting list that a place is theirs ("offer-<id>")."""
    from crm.services import offer_sending

    with worker_app().app_context():
        return offer_sending.send(offer_id)


def invite_to_next_lab(lab_id: int) -> int:
    """Register a closed lab's attendees in its next lab ("next-lab-<id>-<next id>")."""
    from crm.services import lab_day

    with worker_app().app_context():
        return lab_day.invite_attendees(lab_id)


def run_import(import_id: int) -> dict[str, Any] | None:
    """A CSV import too large for the request; resumes where a crashed run stopped."""
    from crm.services import imports

    with worker_app().app_context():
        batch = imports.run(import_id)
        return None if batch is None else batch.progress()


def run_retention() -> int:
    """Anonymise the people whose retention period is over (`rq cron`, daily)."""
    from crm.services import retention

    with worker_app().app_context():
        return len(retention.run())


def noop() -> None:
    """Does nothing: bench/followups_bench.py measures RQ's own cost per job with it."""
