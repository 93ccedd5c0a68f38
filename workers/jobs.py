"""RQ jobs: small functions taking ids, safe to run twice (RQ delivers at least once)."""

from __future__ import annotations

from functools import cache

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


def run_import(import_id: int) -> dict[str, int | str] | None:
    """A CSV import too large for the request; resumes where a crashed run stopped."""
    from crm.services import imports

    with worker_app().app_context():
        batch = imports.run(import_id)
        return None if batch is None else batch.progress()
