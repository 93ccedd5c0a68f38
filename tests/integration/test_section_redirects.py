"""After a form on a long page, the redirect goes back to its section (#anchor), unless an
error or a warning was flashed: it is shown at the top of the page, which the anchor would
scroll past."""

from __future__ import annotations

import pytest
from flask import flash

from crm.views import redirect_to_section


@pytest.mark.parametrize(
    "category,anchored", [("success", True), ("info", True), ("warning", False), ("error", False)]
)
def test_the_anchor_is_kept_unless_a_problem_was_flashed(app, category, anchored):
    with app.test_request_context("/"):
        flash("Message", category)
        location = redirect_to_section("labs.show", "inscriptions", lab_id=3).location
    assert location.startswith("/labs/3")
    assert location.endswith("#inscriptions") is anchored
