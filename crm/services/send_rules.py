"""The sending rules as pure functions (table-tested in tests/unit/test_followup_rules.py):
each says why a message must not go now, or when to try again. crm.services.sending applies
them at send time, with what it reads from the database."""

from __future__ import annotations

from datetime import datetime, timedelta

from crm.services import registrations
from crm.services.window import Window, is_open, next_opening

BACKOFF = timedelta(minutes=5)  # then 20, 80 (×4 each time): RETRY_BACKOFF_SECONDS
# The registration statuses each sequence's messages are still for.
WAITING = {
    "invitation": registrations.WAITING,
    "reminders": frozenset({"confirmed"}),
    "thank_you": frozenset({"attended"}),
}
STATUS_REFUSALS = {
    "declined": "La personne a décliné l'invitation.",
    "cancelled": "L'inscription est annulée.",
    "disqualified": "La personne est hors cible.",
    "confirmed": "La personne a déjà confirmé sa venue.",
}
CHANNEL_TEXTS = {"sms": "les SMS", "email": "les e-mails", "call": "les appels"}


def relevance_refusal(kind: str, status: str, lab_started: bool, lab_full: bool) -> str | None:
    """Why this sequence's message is no longer relevant for the registration, or None."""
    if kind in ("invitation", "reminders") and lab_started:
        return "Le lab a déjà commencé."
    if status not in WAITING[kind]:
        return STATUS_REFUSALS.get(status, f"L'inscription n'attend plus ce message ({status}).")
    if kind == "invitation" and lab_full:
        return "Le lab est complet."
    return None


def permission_refusal(
    channel: str, allowed: bool, address: str | None, phone_invalid: bool = False
) -> str | None:
    if not allowed:
        return f"La personne n'a pas autorisé {CHANNEL_TEXTS[channel]}."
    if not address:
        if phone_invalid:
            return "Le numéro de téléphone est invalide."
        return "Coordonnée absente pour ce canal."
    return None


def pressure_refusal(sent_recently: int, cap: int, days: int) -> str | None:
    if sent_recently >= cap:
        return f"Plafond atteint : {sent_recently} messages automatiques en {days} jours."
    return None


def quiet_refusal(declined_at: datetime | None, now: datetime, days: int) -> str | None:
    if declined_at is not None and declined_at > now - timedelta(days=days):
        return f"La personne a décliné une invitation il y a moins de {days} jours."
    return None


def window_move(now: datetime, window: Window) -> datetime | None:
    """None when `now` is inside the send window, else the next opening."""
    return None if is_open(now, window) else next_opening(now, window)


def retry_at(now: datetime, attempts: int, window: Window, first: timedelta = BACKOFF) -> datetime:
    delay = first * 4 ** max(attempts - 1, 0)
    return next_opening(now + delay, window)
