from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, render_template
from flask_login import current_user

from crm.extensions import db
from crm.models import Lab

bp = Blueprint("main", __name__)


@bp.get("/")
def home() -> str:
    labs = db.session.scalars(
        sa.select(Lab).where(Lab.status.in_(("recruiting", "closed"))).order_by(Lab.starts_at)
    ).all()
    template = "main/home_manager.html" if current_user.is_manager else "main/home_caller.html"
    return render_template(template, labs=labs)
