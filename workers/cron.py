"""Configuration for `rq cron workers/cron.py`: one process runs the periodic jobs."""

from __future__ import annotations

from rq import cron

from crm.services.funnel import REFRESH_SECONDS
from workers.jobs import dispatch_due, refresh_dashboards
from workers.queues import DISPATCH

DISPATCH_INTERVAL_SECONDS = 30

cron.register(dispatch_due, DISPATCH, interval=DISPATCH_INTERVAL_SECONDS, job_timeout=300)
cron.register(refresh_dashboards, DISPATCH, interval=REFRESH_SECONDS, job_timeout=300)
