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
