from __future__ import annotations

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from crm.services import health
from crm.views import public

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
def healthz() -> tuple[Response, int]:
    healthy, report = health.check()
    return jsonify(report), 200 if healthy else 503
