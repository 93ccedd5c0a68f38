"""Manager-only services refuse a caller even when called without going through a page; the
system itself (actor None: jobs, `flask crm` commands) and managers may."""

from __future__ import annotations

import io
from datetime import date, time

import pytest

from crm.extensions import db
from crm.services import exports, import_upload, lab_sending, sequence_editing, workshop_groups
from crm.services.labs import LabInput, create_lab
from crm.services.permissions import PermissionDenied

REFUSED = [
    lambda w: create_lab(LabInput("Lab", date(2027, 3, 3), time(9), time(13)), w["alice"]),
    lambda w: exports.record_export(w["lab"], w["alice"], None),
    lambda w: import_upload.create_from_upload(
        io.BytesIO(b"nom\nA\n"), "a.csv", w["alice"].id, None
    ),
    lambda w: workshop_groups.make_groups(w["lab"], w["alice"]),
    lambda w: sequence_editing.personalise(w["lab"], "invitation", w["alice"]),
    lambda w: lab_sending.pause(w["lab"], w["alice"]),
]


@pytest.mark.parametrize("action", REFUSED)
def test_a_caller_is_refused(world, action):
    with pytest.raises(PermissionDenied, match="réservée aux responsables"):
        action(world)
    db.session.rollback()


def test_a_manager_and_the_system_may(world):
    exports.record_export(world["lab"], world["manager"], None)
    lab, _ = create_lab(LabInput("Lab", date(2027, 3, 3), time(9), time(13)), None)
    assert lab.id and lab_sending.pause(world["lab"], world["manager"])
