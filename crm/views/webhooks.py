"""Twilio webhooks: inbound SMS and delivery receipts. Public (Twilio has no session) and
exempt from CSRF, the only exempted routes besides the one-click e-mail unsubscribe: the
X-Twilio-Signature check replaces both. A missing or wrong signature gets 403 and nothing
is stored."""

from __future__ import annotations

from flask import Blueprint, Response, abort, request
from twilio.twiml.messaging_response import MessagingResponse

from crm.extensions import csrf
from crm.messaging import webhooks
from crm.services import receipts, replies
from crm.views import public

bp = Blueprint("webhooks", __name__)


def _twiml(reply: str | None = None) -> Response:
    answer = MessagingResponse()
    if reply:
        answer.message(reply)
    return Response(str(answer), mimetype="application/xml")


@bp.post(webhooks.INBOUND_PATH)
@public
@csrf.exempt
def inbound_sms() -> Response:
    if not webhooks.is_signed(request):
        abort(403)
    try:
        # None for a MessageSid already stored (Twilio posted it again): processed once.
        reply = replies.receive(request.form)
    except ValueError:
        abort(400)
    return _twiml(reply)


@bp.post(webhooks.STATUS_PATH)
@public
@csrf.exempt
def delivery_status() -> Response:
    if not webhooks.is_signed(request):
        abort(403)
    receipts.apply(request.form)
    return Response(status=204)
