"""Configuration for `rq cron workers/cron.py`: one process runs the periodic jobs."""

from __future__ import annotations

import os

from rq import cron

from crm.services.funnel import REFRESH_SECONDS
from workers.jobs import dispatch_due, refresh_dashboards, run_retention
from workers.queues import DEFAULT, DISPATCH

# 30 s in production; the fault suite runs the dispatcher more often to finish in bounded time.
DISPATCH_INTERVAL_SECONDS = int(os.environ.get("CRM_DISPATCH_INTERVAL_SECONDS") or 30)

cron.register(dispatch_due, DISPATCH, interval=DISPATCH_INTERVAL_SECONDS, job_timeout=300)
cron.register(refresh_dashboards, DISPATCH, interval=REFRESH_SECONDS, job_timeout=300)
# Daily at 03:00 (the cron process's local time), outside working hours.
cron.register(run_retention, DEFAULT, cron="0 3 * * *", job_timeout=3600)
