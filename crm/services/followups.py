"""What the follow-up engine must do after something happened to a registration.

The sequences themselves (SMS and e-mail relances, reminders) arrive with the follow-up
engine; until then each intent is recorded as an event that the engine will act on.
"""

from __future__ import annotations

from crm.extensions import db
from crm.models import Event, Registration, User

START_INVITATION = "start_invitation"
STOP_INVITATION = "stop_invitation"
START_REMINDERS = "start_reminders"
INTENT_LABELS = {
    START_INVITATION: "démarrer les relances d'invitation",
    STOP_INVITATION: "arrêter les relances d'invitation",
    START_REMINDERS: "programmer les rappels avant le lab",
}


def on_registration_change(
    registration: Registration, intents: list[str], actor: User | None, why: str
) -> None:
    """Tell the follow-up engine what to do next for this registration."""
    if not intents:
        return
    unknown = set(intents) - set(INTENT_LABELS)
    if unknown:
        raise ValueError(f"unknown follow-up intents: {sorted(unknown)}")
    db.session.add(
        Event(
            kind="followup.intent",
            actor_id=actor.id if actor else None,
            prospect_id=registration.prospect_id,
            lab_id=registration.lab_id,
            registration_id=registration.id,
            reason=why,
            data={"intents": intents},
        )
    )
