"""The floor of a send, a second reference for bench/followups_bench.py (`--floor`).

A job that does only the steps issue 5 names for a send, and nothing else: read the
person's number, mark the row `sending` and commit, call Twilio through the app's own client
(`crm.messaging.twilio_backend.send`), store the provider's id and mark the row `sent`, commit.
No rule is checked, no Message row or timeline event is written, nothing is paced, the text is
fixed. A correct send cannot cost less: the ratio of this job to the bare jobs is the best the
real send job could reach on the same machine, workers and dispatcher.

The workers import it as `bench.send_floor.floor_send` (rq adds its working folder, the
repository, to the import path).
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from crm.extensions import db
from crm.messaging import twilio_backend
from crm.messaging.sms import current_sender
from crm.messaging.webhooks import status_callback_url
from crm.models import FollowUp, Prospect, Registration
from crm.timeutil import utcnow
from workers.jobs import worker_app

JOB = "bench.send_floor.floor_send"
BODY = "Bonjour, l'open lab a besoin de vous. Répondez OUI pour venir."
VALIDITY_SECONDS = 3600


def floor_send(followup_id: int) -> str:
    with worker_app().app_context(), db.engine.connect() as conn:
        phone = conn.scalar(
            sa.select(Prospect.phone)
            .join(Registration, Registration.prospect_id == Prospect.id)
            .join(FollowUp, FollowUp.registration_id == Registration.id)
            .where(FollowUp.id == followup_id, FollowUp.status == "queued")
        )
        claimed = conn.execute(
            sa.update(FollowUp)
            .where(FollowUp.id == followup_id, FollowUp.status == "queued")
            .values(status="sending", updated_at=utcnow())
        )
        if phone is None or claimed.rowcount != 1:
            return "taken"
        conn.commit()
        accepted = twilio_backend.send(
            twilio_backend.TwilioSettings.from_config(current_app.config),
            current_sender(),
            phone,
            BODY,
            status_callback=status_callback_url(),
            validity_seconds=VALIDITY_SECONDS,
        )
        now = utcnow()
        conn.execute(
            sa.update(FollowUp)
            .where(FollowUp.id == followup_id)
            .values(status="sent", sent_at=now, updated_at=now, reason=accepted.provider_id)
        )
        conn.commit()
        return "sent"
