"""SMS people sent us: the managers' list (what still needs a person), and in development the
simulated phone, which posts a typed reply to the real webhook with a valid signature."""

from __future__ import annotations

import uuid
from xml.etree import ElementTree

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from crm.extensions import db
from crm.forms.replies import HandledForm, SimulatedReplyForm
from crm.messaging import webhooks
from crm.models import InboundMessage, Message, Prospect
from crm.models.inbound import INBOUND_TO_HANDLE
from crm.services import replies
from crm.services.reply_parser import LABELS
from crm.views import roles_required

bp = Blueprint("replies", __name__)


@bp.get("/reponses/")
@roles_required("manager", "admin")
def index() -> str:
    show_all = request.args.get("tout") == "1"
    query = sa.select(InboundMessage).order_by(
        InboundMessage.received_at.desc(), InboundMessage.id.desc()
    )
    if not show_all:
        query = query.where(InboundMessage.outcome.in_(INBOUND_TO_HANDLE))
    page = db.paginate(
        query, page=request.args.get("page", 1, type=int), per_page=50, error_out=False
    )
    return render_template(
        "replies/index.html",
        page=page,
        show_all=show_all,
        understood_labels={reply.value: label for reply, label in LABELS.items()},
        form=HandledForm(),
    )


@bp.post("/reponses/<int:inbound_id>/traite")
@roles_required("manager", "admin")
def handled(inbound_id: int) -> BaseResponse:
    inbound = db.get_or_404(InboundMessage, inbound_id)
    if HandledForm().validate_on_submit() and replies.mark_handled(inbound, current_user):
        db.session.commit()
        flash("Message marqué comme traité.", "success")
    return redirect(url_for(".index"))


# --- Development: the simulated phone ---------------------------------------------------------


def simulator_available() -> bool:
    """Outside production only: the simulated phone posts signed replies in a person's name
    (a "STOP", a "OUI"), which no one may do on a server holding real people's records, even
    one whose SMS stay in the outbox (a staging server)."""
    config = current_app.config
    return config.get("SMS_BACKEND") == "outbox" and config.get("CRM_ENV") != "production"


@bp.route("/prospects/<int:prospect_id>/telephone-simule", methods=["GET", "POST"])
def simulated_phone(prospect_id: int) -> str | tuple[str, int] | BaseResponse:
    if not simulator_available():
        abort(404)
    prospect = db.get_or_404(Prospect, prospect_id)
    if not prospect.phone:
        flash("Cette personne n'a pas de numéro de mobile valide.", "error")
        return redirect(url_for("prospects.show", prospect_id=prospect.id))
    form = SimulatedReplyForm()
    if form.validate_on_submit():
        answer = _post_to_webhook(prospect.phone, form.body.data or "")
        flash(
            f"Réponse reçue par le CRM : « {answer} »" if answer else "Message reçu par le CRM.",
            "success",
        )
        return redirect(url_for(".simulated_phone", prospect_id=prospect.id))
    sent = db.session.scalars(
        sa.select(Message)
        .where(Message.channel == "sms", Message.to_address == prospect.phone)
        .order_by(Message.created_at.desc())
        .limit(50)
    )
    received = db.session.scalars(
        sa.select(InboundMessage)
        .where(InboundMessage.from_e164 == prospect.phone)
        .order_by(InboundMessage.received_at.desc())
        .limit(50)
    )
    thread = sorted(
        [("in", m.created_at, m.body) for m in sent]
        + [("out", m.received_at, m.body) for m in received],
        key=lambda item: item[1],
    )
    status = 400 if form.errors else 200
    return render_template(
        "replies/phone.html", prospect=prospect, thread=thread, form=form
    ), status


def _post_to_webhook(phone: str, body: str) -> str | None:
    """Post the reply to the real inbound webhook, signed like Twilio would; the TwiML
    answer's text, if any."""
    params = {
        "MessageSid": "SMsimule" + uuid.uuid4().hex,
        "AccountSid": "ACsimulateur",
        "From": phone,
        "To": "simulateur",
        "Body": body,
    }
    url = webhooks.public_url(webhooks.INBOUND_PATH)
    base = str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/")
    with current_app.test_client() as client:
        response = client.post(
            webhooks.INBOUND_PATH,
            data=params,
            base_url=base,
            headers={"X-Twilio-Signature": webhooks.sign(url, params)},
        )
    if response.status_code != 200:
        return None
    message = ElementTree.fromstring(response.get_data()).find("Message")
    return message.text if message is not None else None
