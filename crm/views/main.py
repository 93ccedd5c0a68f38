from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, render_template
from flask_login import current_user

from crm.extensions import db
from crm.models import Lab
from crm.services import caller_stats

bp = Blueprint("main", __name__)


@bp.get("/")
def home() -> str:
    labs = db.session.scalars(
        sa.select(Lab).where(Lab.status.in_(("recruiting", "closed"))).order_by(Lab.starts_at)
    ).all()
    if current_user.is_manager:
        return render_template("main/home_manager.html", labs=labs)
    return render_template(
        "main/home_caller.html", labs=labs, day=caller_stats.caller_day(current_user)
    )
