"""Send failures, classified so that the follow-up engine knows what to do next.

Every failure raised by `crm.messaging.sms` and `crm.messaging.email` is a `SendError` whose
`kind` says what the engine should do; the backends never retry by themselves:

- `invalid_number`  the number cannot receive SMS (Twilio 21211, 21614): mark the phone invalid.
- `opted_out`       the person sent STOP to the sender (21610): SMS opt-out.
- `retry_later`     the handset was unreachable (30003, 30008): try again later, a few times.
- `blocked`         the carrier refuses the number (30005, 30006, 30007): stop SMS to it.
- `transient`       HTTP 429, 5xx, connection error, timeout, SMTP 4xx: retry with backoff.
- `permanent`       anything else (bad credentials, SMTP 5xx refusal...): do not retry.

`maybe_sent` is True when the provider may have accepted the message before the failure
(a read timeout, a connection lost after the request was written): the Message row is then
left in status "unknown" and retrying risks a duplicate.
"""

from __future__ import annotations

from typing import ClassVar

INVALID_NUMBER = "invalid_number"
OPTED_OUT = "opted_out"
RETRY_LATER = "retry_later"
BLOCKED = "blocked"
TRANSIENT = "transient"
PERMANENT = "permanent"
KINDS = (INVALID_NUMBER, OPTED_OUT, RETRY_LATER, BLOCKED, TRANSIENT, PERMANENT)
RETRYABLE_KINDS = frozenset({RETRY_LATER, TRANSIENT})

TWILIO_ERROR_KINDS: dict[int, str] = {
    21211: INVALID_NUMBER,
    21614: INVALID_NUMBER,
    21610: OPTED_OUT,
    30003: RETRY_LATER,
    30008: RETRY_LATER,
    30005: BLOCKED,
    30006: BLOCKED,
    30007: BLOCKED,
}

TWILIO_ERROR_TEXTS: dict[int, str] = {
    20003: "Identifiants Twilio refusés : vérifiez TWILIO_ACCOUNT_SID et TWILIO_AUTH_TOKEN.",
    21211: "Numéro de téléphone invalide.",
    21408: "L'envoi de SMS vers ce pays n'est pas autorisé sur le compte Twilio.",
    21610: "La personne a demandé à ne plus recevoir de SMS (STOP).",
    21614: "Ce numéro n'est pas un mobile : il ne peut pas recevoir de SMS.",
    21617: "Le SMS est trop long.",
    30003: "Téléphone injoignable (éteint ou hors réseau).",
    30005: "Numéro inconnu ou inactif chez l'opérateur.",
    30006: "Numéro fixe ou opérateur injoignable.",
    30007: "SMS filtré par l'opérateur.",
    30008: "Erreur inconnue chez l'opérateur.",
}


def _as_code(code: int | str | None) -> int | None:
    if code is None or code == "":
        return None
    try:
        return int(code)
    except (TypeError, ValueError):
        return None


def classify_error_code(code: int | str | None) -> str:
    """The kind of a Twilio error code, from the API answer or a status callback's ErrorCode."""
    value = _as_code(code)
    return TWILIO_ERROR_KINDS.get(value, PERMANENT) if value is not None else PERMANENT


def describe_error_code(code: int | str | None) -> str:
    """A French sentence for a Twilio error code, to show on the timeline."""
    value = _as_code(code)
    if value is None:
        return "Échec de l'envoi du SMS."
    return TWILIO_ERROR_TEXTS.get(value, f"Échec de l'envoi du SMS (erreur Twilio {value}).")


class SendError(RuntimeError):
    """The provider refused or failed. `str(error)` is a French sentence for users.

    Attributes: `kind` (see the module docstring), `code` (Twilio error code or SMTP reply
    code), `http_status`, `maybe_sent`, `provider_message` (the provider's own words) and
    `message_id` (the Message row recording the failure, set by the sending functions).
    """

    kind: ClassVar[str] = PERMANENT

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        http_status: int | None = None,
        maybe_sent: bool = False,
        provider_message: str = "",
        message_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status
        self.maybe_sent = maybe_sent
        self.provider_message = provider_message
        self.message_id = message_id

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS

    @property
    def permanent(self) -> bool:
        return not self.retryable

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, kind={self.kind!r}, code={self.code!r})"


class InvalidNumber(SendError):
    kind = INVALID_NUMBER


class OptedOut(SendError):
    kind = OPTED_OUT


class RetryLater(SendError):
    kind = RETRY_LATER


class Blocked(SendError):
    kind = BLOCKED


class TransientError(SendError):
    kind = TRANSIENT


class PermanentError(SendError):
    kind = PERMANENT


ERROR_CLASSES: dict[str, type[SendError]] = {
    cls.kind: cls for cls in (InvalidNumber, OptedOut, RetryLater, Blocked, TransientError)
} | {PERMANENT: PermanentError}


def error_for_code(
    code: int | None, *, http_status: int | None = None, provider_message: str = ""
) -> SendError:
    """The SendError for a Twilio error code, with its French description."""
    cls = ERROR_CLASSES[classify_error_code(code)]
    return cls(
        describe_error_code(code),
        code=code,
        http_status=http_status,
        provider_message=provider_message,
    )


class AlreadySentError(RuntimeError):
    """Delivery was asked for a Message that is no longer pending: nothing was sent."""

    def __init__(self, message_id: int | None, status: str) -> None:
        super().__init__(
            f"Le message {message_id} est déjà à l'état « {status} » : il n'est pas renvoyé."
        )
        self.message_id = message_id
        self.status = status
