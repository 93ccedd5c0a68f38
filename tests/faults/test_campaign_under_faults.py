"""A campaign of 5,000 prospects across 2 labs on the production layout, while processes die.

`make test-faults` (CI runs it after the suite, on its own PostgreSQL and Redis started by
deploy/prod_local.py; the quick suite leaves it out). While the rows are sent and people
answer by SMS, the suite:

1. makes the fake provider answer slowly, then HTTP 500, then time out, for a while each;
2. kills a random RQ worker with SIGKILL 10 times (the layout starts it again);
3. restarts Redis with its data wiped (every queued job is lost);
4. stops PostgreSQL for 10 seconds;
5. throughout: replays 10 % of the inbound webhooks and posts receipts out of order.

Then it waits until no due follow-up is left open and checks, printing the counts: every
due follow-up was sent exactly once, or skipped / failed / cancelled with a reason, or is
`unknown` for review (at most one per kill); the provider never got the same SMS twice and
the SMTP server never got the same e-mail twice; every reply answered is stored once and
processed once; a status never moved backwards; no registration is in an impossible state.
Loopback only; bounded (about 5 minutes; it gives up after FAULTS_TIMEOUT).
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from crm.services.window import is_holiday
from deploy.prod_local import Ports, ProdLocal
from tests.faults.campaign import Twilio, counts, layout_app, seed, settle

pytestmark = pytest.mark.faults

PEOPLE = 5_000
KILLS = 10
SETTLE_TIMEOUT = 300.0
# The layout's settings for a run that ends in minutes, not hours: the dispatcher every 5 s,
# a lost job looked at again after 20 s, retries after 3 s (×4), a 3 s provider timeout,
# 40 SMS a second (the campaign lasts about two minutes, so the faults hit it while sending).
FAST = {
    "CRM_DISPATCH_INTERVAL_SECONDS": "5",
    "CRM_STUCK_AFTER_SECONDS": "20",
    "CRM_RETRY_BACKOFF_SECONDS": "3",
    "CRM_TWILIO_TIMEOUT_SECONDS": "3",
    "CRM_SMS_RATE_PER_SECOND": "40",
    "CRM_PRESSURE_CAP_MESSAGES": "10",
}


@pytest.fixture
def layout() -> Iterator[ProdLocal]:
    if is_holiday(date.today()):
        pytest.skip("jour férié : aucune relance ne part, la campagne ne peut pas avoir lieu")
    # Not under pytest's tmp_path: its parent is private to root, and PostgreSQL runs as postgres.
    state = Path(tempfile.mkdtemp(prefix="openlab-faults-"))
    try:
        with ProdLocal(state=state, ports=Ports.free(), env_overrides=FAST) as running:
            yield running
    finally:
        shutil.rmtree(state, ignore_errors=True)


def _log(started: float, text: str) -> None:
    print(f"[{time.monotonic() - started:6.1f} s] {text}", flush=True)


def test_a_campaign_survives_kills_restarts_and_a_failing_provider(layout: ProdLocal) -> None:
    app = layout_app(layout)
    seeded = seed(app, PEOPLE)
    rng = random.Random(2026)
    twilio = Twilio(layout, seeded.phones)
    people = threading.Thread(target=twilio.run, args=(110.0, 10.0), daemon=True)
    started = time.monotonic()
    people.start()
    _log(started, f"{PEOPLE} personnes, 2 labs ; relances en cours, réponses 10/s")

    time.sleep(5)
    for label, rule in (
        ("opérateur lent (1,5 s)", {"delay": 1.5}),
        ("opérateur en erreur HTTP 500", {"http_status": 500}),
        ("opérateur muet (délai dépassé)", {"delay": 5}),
    ):
        _log(started, label)
        layout.program_twilio(**rule)
        time.sleep(8)
        layout.reset_twilio()
    kills = []
    for _ in range(KILLS):
        kills.append(layout.kill_random_worker(rng))
        time.sleep(rng.uniform(2, 4))
    _log(started, f"{KILLS} workers tués (SIGKILL) : {', '.join(kills)}")
    layout.restart_redis_wiped()
    _log(started, "Redis redémarré, vidé")
    time.sleep(5)
    with layout.postgres_down(10):
        _log(started, "PostgreSQL arrêté 10 s")
    _log(started, "PostgreSQL relancé")

    people.join()
    settled, waited = settle(app, SETTLE_TIMEOUT)
    twilio.stop.set()
    twilio.finish()
    _log(started, f"{'stabilisé' if settled else 'PAS stabilisé'} après {waited:.0f} s d'attente")
    result = counts(app, layout, twilio, seeded)
    restarts = {n: s.restarts for n, s in layout.services.items() if s.restarts}
    print(json.dumps({**result, "restarts": restarts}, indent=2, ensure_ascii=False), flush=True)

    assert settled, f"due follow-ups still open after {SETTLE_TIMEOUT:.0f} s"
    assert result["followups_open"] == 0
    assert result["followups_without_reason"] == 0
    assert result["unknown"] <= KILLS  # at most one send cut short per kill
    assert result["sms_duplicates_at_provider"] == 0
    assert result["sms_sent_rows_not_at_provider"] == 0
    assert result["sms_at_provider_unrecorded"] <= result["sms_in_doubt"]
    assert result["email_duplicates"] == 0
    assert result["email_sent_rows_not_received"] == 0
    assert result["replies_never_answered"] == 0
    assert result["replies_stored"] == result["replies_posted"]
    assert result["replies_stored_twice"] == 0
    assert result["replies_answered_not_stored"] == 0
    assert result["reply_events"] == result["replies_processed"]
    assert result["receipts_not_answered"] == 0
    assert result["receipts_status_moved_back"] == 0
    assert result["places_over_capacity"] == 0
    assert result["open_invitation_rows_of_settled_registrations"] == 0
    assert result["waitlisted_without_rank"] == 0
    assert result["status_differs_from_journal"] == 0
    assert result["confirmed_without_reminders"] == 0
    assert result["declined_with_open_rows"] == 0
    sent = sum(result["followups"].get(s, 0) for s in ("sent", "delivered"))
    assert sent > PEOPLE  # the campaign really ran: most rows went out
