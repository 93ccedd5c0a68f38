"""The audit trail as a manager reads it: French names for what the entries record (field
names, channels, statuses, funnel steps), Oui/Non for booleans."""

from __future__ import annotations

from typing import Any

from crm.models.prospect import CHANNEL_LABELS
from crm.models.registration import REGISTRATION_STATUS_LABELS
from crm.services.funnel_sql import PEOPLE_LISTS, STEP_LABELS
from crm.services.import_mapping import FIELD_LABELS

OBJECT_LABELS = {"dashboard": "Tableau de bord", "prospect": "Fiche", "lab": "Open lab"}
KEY_LABELS = {
    "champs": "champs modifiés",
    "autorisation": "autorisation",
    "accordee": "accordée",
    "format": "format",
    "liste": "liste",
    "statut": "statut",
    "etape": "étape",
    "lignes": "lignes",
    "relances_annulees": "relances annulées",
    "appels": "appels",
    "messages": "messages",
    "sms_recus": "SMS reçus",
    "autorisations": "autorisations",
    "evenements": "événements",
    "lignes_importees": "lignes d'import",
}
FIELD_NAMES = {**FIELD_LABELS, "phone_raw": "Téléphone tel que saisi", "source_id": "Source"}
VALUE_LABELS: dict[str, dict[str, str]] = {
    "champs": FIELD_NAMES,
    "autorisation": CHANNEL_LABELS,
    "statut": REGISTRATION_STATUS_LABELS,
    "etape": {**STEP_LABELS, **PEOPLE_LISTS},
}


def _value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "Oui" if value else "Non"
    names = VALUE_LABELS.get(key, {})
    if isinstance(value, list | tuple):
        return ", ".join(names.get(str(v), str(v)) for v in value)
    return names.get(str(value), str(value))


def describe(detail: dict[str, Any] | None) -> str:
    """'champs modifiés : Prénom, Téléphone · ...', or '—' when there is nothing to say."""
    parts = [
        f"{KEY_LABELS.get(key, key.replace('_', ' '))} : {_value(key, value)}"
        for key, value in (detail or {}).items()
        if value is not None
    ]
    return " · ".join(parts) or "—"


def object_label(object_type: str | None) -> str:
    return OBJECT_LABELS.get(object_type or "", object_type or "—")
