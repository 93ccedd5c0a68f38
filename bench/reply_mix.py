"""What people answer an invitation with, roughly, as Twilio posts it: the inbound SMS of the
webhook benchmark and the load run (no import of the app: the load run sets its environment
first)."""

from __future__ import annotations

import random
import secrets

# (text, weight)
BODIES = [
    ("oui", 20),
    ("Oui je serai là !", 8),
    ("Non merci", 10),
    ("non", 4),
    ("STOP", 6),
    ("c'est où ?", 12),
    ("ok 👍", 12),
    ("Je ne sais pas encore, je vous redis", 6),
    ("C'est à quelle heure ?", 8),
    ("START", 3),
    ("aide", 3),
]
UNKNOWN_SENDER_SHARE = 0.02  # a number no prospect has


def inbound_params(rng: random.Random, phones: list[str], to: str, account_sid: str) -> dict:
    """The form of one inbound SMS as Twilio posts it: a unique MessageSid, a sender among
    `phones` (or, now and then, a number no prospect has), a text drawn from BODIES."""
    texts, weights = zip(*BODIES, strict=True)
    sid = "SM" + secrets.token_hex(16)
    sender = rng.choice(phones)
    if rng.random() < UNKNOWN_SENDER_SHARE:
        sender = f"+3378{rng.randrange(10**7):07d}"
    return {
        "ToCountry": "FR",
        "ToState": "",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": rng.choices(texts, weights)[0],
        "FromCountry": "FR",
        "To": to,
        "ToZip": "",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }
