"""A person's whole story, newest first, read from the append-only events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from crm.extensions import db
from crm.models import Event, Lab
from crm.models.call import CALL_OUTCOME_LABELS
from crm.models.prospect import CHANNEL_LABELS, CONSENT_METHOD_LABELS
from crm.models.registration import REGISTRATION_STATUS_LABELS
from crm.services.followups import INTENT_LABELS

KIND_LABELS = {
    "prospect.created": "Fiche créée",
    "prospect.merged": "Fiche complétée",
    "prospect.qualified": "Qualification modifiée",
    "prospect.updated": "Fiche modifiée",
    "registration.created": "Inscrit·e à un lab",
    "registration.status": "Statut modifié",
    "call.logged": "Appel",
    "followup.intent": "Relances",
    "message.sent": "Message envoyé",
    "message.failed": "Message non envoyé",
    "message.received": "Message reçu",
    "reply.received": "SMS reçu",
    "reply.handled": "SMS lu par l'équipe",
    "followup.reviewed": "Envoi vérifié",
    "consent.changed": "Autorisation de contact",
    "waitlist.offer": "Place libérée proposée",
    "waitlist.offer_sent": "Proposition de place envoyée",
    "waitlist.offer_expired": "Proposition de place expirée",
    "waitlist.offer_cancelled": "Proposition de place annulée",
    "lab.checked_in": "Arrivée au lab",
    "lab.next_lab": "Invité·e au lab suivant",
    "prospect.motivated": "Utilisateur motivé",
    "prospect.active_user": "Utilisateur actif du service",
}


@dataclass
class TimelineItem:
    at: datetime
    title: str
    detail: str
    actor: str
    lab: str
    kind: str


def _describe(event: Event) -> tuple[str, str]:
    title = KIND_LABELS.get(event.kind, event.kind)
    data = event.data or {}
    if event.kind == "call.logged":
        title = f"Appel : {CALL_OUTCOME_LABELS.get(data.get('outcome', ''), '?')}"
    elif event.kind in ("registration.status", "registration.created"):
        before = REGISTRATION_STATUS_LABELS.get(event.from_status or "", "")
        after = REGISTRATION_STATUS_LABELS.get(event.to_status or "", "")
        title = f"{title} : {before} → {after}" if before else f"{title} : {after}"
    elif event.kind == "consent.changed":
        channel = CHANNEL_LABELS.get(data.get("channel", ""), "?")
        verb = "accordée" if data.get("granted") else "retirée"
        how = CONSENT_METHOD_LABELS.get(data.get("method", ""), "")
        title = f"Autorisation {channel} {verb}" + (f" ({how.lower()})" if how else "")
    elif event.kind == "followup.intent":
        title = "Relances : " + ", ".join(INTENT_LABELS.get(i, i) for i in data.get("intents", []))
    elif event.kind == "reply.received":
        # What the person wrote, then what the CRM did with it.
        return f"{title} : « {data.get('body', '')} »", event.reason or ""
    return title, event.reason or ""


def for_prospect(prospect_id: int, limit: int = 200) -> list[TimelineItem]:
    events = db.session.scalars(
        sa.select(Event)
        .where(Event.prospect_id == prospect_id)
        .options(selectinload(Event.actor))
        .order_by(Event.created_at.desc(), Event.id.desc())
        .limit(limit)
    ).all()
    lab_ids = {e.lab_id for e in events if e.lab_id}
    labs = (
        dict(db.session.execute(sa.select(Lab.id, Lab.title).where(Lab.id.in_(lab_ids))).all())
        if lab_ids
        else {}
    )
    items = []
    for event in events:
        title, detail = _describe(event)
        actor = event.actor.display_name if event.actor else "Automatique"
        items.append(
            TimelineItem(
                event.created_at, title, detail, actor, labs.get(event.lab_id, ""), event.kind
            )
        )
    return items
