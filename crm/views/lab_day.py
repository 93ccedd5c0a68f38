"""(in progress)"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("lab_day", __name__)
