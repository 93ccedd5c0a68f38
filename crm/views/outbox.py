"""The development outbox: every SMS and e-mail the CRM sent, readable in the app."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, render_template, request

from crm.extensions import db
from crm.models import Message
from crm.views import roles_required

bp = Blueprint("outbox", __name__, url_prefix="/messages")


@bp.get("/")
@roles_required("manager", "admin")
def index() -> str:
    page = request.args.get("page", 1, type=int)
    query = sa.select(Message).order_by(Message.created_at.desc(), Message.id.desc())
    messages = db.paginate(query, page=page, per_page=50, error_out=False)
    return render_template("outbox/index.html", messages=messages)
