"""What TWILIO_SENDER is: a number, a short code, an alphanumeric sender ID or a Messaging Service.

An alphanumeric sender ("OpenLab") is the rule in France for automated SMS: it is one-way,
nobody can reply to it, so every SMS must carry the person's signed link. A number, a short
code or a Messaging Service (whose pool holds numbers) can receive replies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

SenderKind = Literal["number", "short_code", "alphanumeric", "messaging_service"]

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_SHORT_CODE = re.compile(r"[0-9]{3,8}")
_ALPHANUMERIC = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")
_MESSAGING_SERVICE = re.compile(r"MG[0-9a-fA-F]{32}")


@dataclass(frozen=True)
class Sender:
    value: str
    kind: SenderKind

    @property
    def two_way(self) -> bool:
        """Can people reply to this sender? False for an alphanumeric sender ID."""
        return self.kind != "alphanumeric"

    def twilio_params(self) -> dict[str, str]:
        """The keyword arguments of `client.messages.create` that name this sender."""
        if self.kind == "messaging_service":
            return {"messaging_service_sid": self.value}
        return {"from_": self.value}


def parse_sender(value: str) -> Sender:
    """Recognise a sender; a ValueError (in French) says what is wrong with it."""
    text = (value or "").strip()
    if _MESSAGING_SERVICE.fullmatch(text):
        return Sender(text, "messaging_service")
    if _E164.fullmatch(text):
        return Sender(text, "number")
    if _SHORT_CODE.fullmatch(text):
        return Sender(text, "short_code")
    if _ALPHANUMERIC.fullmatch(text):
        return Sender(text, "alphanumeric")
    raise ValueError(
        f"Expéditeur SMS non reconnu : « {text} ». Attendu : un numéro au format "
        "international (+33…), un code court, un nom de 11 caractères au plus (lettres, "
        "chiffres, espaces, au moins une lettre) ou un identifiant de Messaging Service (MG…)."
    )
