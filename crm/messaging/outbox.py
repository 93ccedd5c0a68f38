"""The outbox backend: a message is 'sent' by storing it, to be read in the app (development).

It answers like Twilio for a number that is not in E.164 format, so that development shows
the same failure as production would.
"""

from __future__ import annotations

import re

from crm.messaging.delivery import Accepted
from crm.messaging.errors import error_for_code

NAME = "outbox"
DEFAULT_SENDER = "OpenLab"  # an alphanumeric sender, as for automated SMS in France

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def send_sms(to: str) -> Accepted:
    if not _E164.fullmatch(to or ""):
        raise error_for_code(21211)
    return Accepted()


def send_email() -> Accepted:
    return Accepted()
