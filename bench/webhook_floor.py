"""The floor of the inbound webhook, a second reference for bench/webhook_bench.py (`--floor`).

A Flask app that does only what issue 6 asks of the webhook before anything else: check
`X-Twilio-Signature` with twilio's RequestValidator against the public URL, store the raw
message once (unique MessageSid, `INSERT ... ON CONFLICT DO NOTHING`, one commit), and answer
a fixed TwiML. No sender lookup, no parsing, no effect, no ORM session. A correct webhook
cannot cost less: its ratio to the bare endpoint is the best the real one could reach with
the same gunicorn settings on the same machine.

It writes to its own table (`floor_inbound`, created by the bench before the servers start)
so that the real app's checks count only the real app's rows. Settings come from the
environment the bench gives both servers: DATABASE_URL, TWILIO_AUTH_TOKEN, and
FLOOR_PUBLIC_URL (the URL the load process signs).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Flask, Response, abort, request
from sqlalchemy.dialects import postgresql, sqlite
from twilio.request_validator import RequestValidator

from crm.config import normalise_database_url
from crm.messaging.webhooks import INBOUND_PATH

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Merci</Message></Response>'

metadata = sa.MetaData()
floor_inbound = sa.Table(
    "floor_inbound",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("message_sid", sa.String(64), nullable=False, unique=True),
    sa.Column("from_number", sa.String(40), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)


def create_app() -> Flask:
    engine = sa.create_engine(
        normalise_database_url(os.environ["DATABASE_URL"]), pool_pre_ping=True
    )
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
    public_url = os.environ["FLOOR_PUBLIC_URL"]
    app = Flask("webhook_floor")

    @app.post(INBOUND_PATH)
    def inbound() -> Response:
        params = request.form.to_dict()
        signature = request.headers.get("X-Twilio-Signature", "")
        if not validator.validate(public_url, params, signature):
            abort(403)
        row = {
            "message_sid": params.get("MessageSid", ""),
            "from_number": params.get("From", ""),
            "body": params.get("Body", ""),
            "params": params,
            "received_at": datetime.now(UTC),
        }
        statement = dialect.insert(floor_inbound).values(row)
        with engine.begin() as conn:
            conn.execute(statement.on_conflict_do_nothing(index_elements=["message_sid"]))
        return Response(TWIML, mimetype="application/xml")

    return app


def stored(url: str) -> tuple[int, int]:
    """The floor's rows and distinct MessageSid (for the bench's check)."""
    engine = sa.create_engine(normalise_database_url(url))
    with engine.connect() as conn:
        count = sa.select(sa.func.count(), sa.func.count(sa.distinct(floor_inbound.c.message_sid)))
        rows, distinct = conn.execute(count).one()
    engine.dispose()
    return int(rows), int(distinct)
