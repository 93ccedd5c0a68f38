"""Serves the DSFR and Chart.js installed by npm (node_modules is never committed)."""

from __future__ import annotations

from flask import Blueprint, Response, send_from_directory

from crm.config import PROJECT_ROOT
from crm.views import public

DSFR_DIST = PROJECT_ROOT / "node_modules" / "@gouvfr" / "dsfr" / "dist"
CHARTJS_DIST = PROJECT_ROOT / "node_modules" / "chart.js" / "dist"

bp = Blueprint("assets", __name__)


@bp.get("/dsfr/<path:filename>")
@public
def dsfr(filename: str) -> Response:
    return send_from_directory(DSFR_DIST, filename, max_age=7 * 24 * 3600)


@bp.get("/favicon.ico")
@public
def favicon() -> Response:
    return send_from_directory(DSFR_DIST / "favicon", "favicon.ico", max_age=7 * 24 * 3600)


@bp.get("/chartjs/chart.umd.js")
def chartjs() -> Response:
    """Chart.js for the dashboard's charts (signed-in pages only, like the dashboard)."""
    return send_from_directory(CHARTJS_DIST, "chart.umd.js", max_age=7 * 24 * 3600)
