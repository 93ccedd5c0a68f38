"""The pages a French public service links from every footer: the accessibility statement,
the legal notice and the personal data notice. Public: the people invited through a personal
link read them too. Who publishes the service and whom to write to come from the settings
(CRM_PUBLISHER, CRM_CONTACT_EMAIL, CRM_HOSTING)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template

from crm.services.window import send_window
from crm.views import public

bp = Blueprint("legal", __name__)
STATEMENT_DATE = "29 novembre 2026"  # the accessibility statement's date, changed with it


def _context() -> dict[str, Any]:
    config = current_app.config
    return {
        "publisher": config.get("CRM_PUBLISHER") or config["CRM_SENDER_NAME"],
        "contact_email": config.get("CRM_CONTACT_EMAIL") or "",
        "hosting": config.get("CRM_HOSTING") or "",
        "statement_date": STATEMENT_DATE,
        "retention_years": round(int(config["RETENTION_DAYS"]) / 365),
        "quiet_days": int(config["REFUSAL_QUIET_DAYS"]),
        "cap_messages": int(config["PRESSURE_CAP_MESSAGES"]),
        "cap_days": int(config["PRESSURE_CAP_DAYS"]),
        "send_window": send_window().describe(),  # a lab may have its own
    }


@bp.get("/accessibilite")
@public
def accessibility() -> str:
    return render_template("legal/accessibility.html", **_context())


@bp.get("/mentions-legales")
@public
def notice() -> str:
    return render_template("legal/notice.html", **_context())


@bp.get("/donnees-personnelles")
@public
def personal_data() -> str:
    return render_template("legal/personal_data.html", **_context())
