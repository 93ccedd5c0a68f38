"""The audit trail: who viewed or changed a person's data, exported a list or erased someone.

`record` works inside a request (the signed-in user and their address) and outside one (the
command line, the daily retention job: a label says who acted). Entries are append-only: the
model refuses updates and deletes, and no route offers either. The detail never holds a phone
number or an e-mail address: `record` masks any value that looks like one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import has_request_context, request
from flask_login import current_user
from flask_sqlalchemy.pagination import Pagination

from crm.extensions import db
from crm.models import AuditEntry, User

ACTION_LABELS = {
    "prospect.viewed": "Fiche consultée",
    "prospect.changed": "Fiche modifiée",
    "prospect.exported": "Données d'une personne exportées",
    "prospect.erased": "Personne effacée",
    "list.exported": "Liste exportée",
    "retention.anonymised": "Anonymisation (durée de conservation dépassée)",
}
CLI_LABEL = "ligne de commande"
MASKED = "(masqué)"
# Nine digits or more with the usual separators (a phone, not a date), or anything with an
# "@": never kept in the trail.
_PHONE_LIKE = re.compile(r"\+?\d[\d\s.\-()/]{6,}\d")
_PHONE_DIGITS = 9


def record(
    action: str,
    object_type: str,
    object_id: int | None,
    detail: dict[str, Any] | None = None,
    *,
    actor: User | None = None,
    actor_label: str | None = None,
) -> AuditEntry:
    """Add one entry to the session (the caller commits, with the action it records). The
    actor is `actor`, else the signed-in user, else `actor_label` (the command line)."""
    if action not in ACTION_LABELS:
        raise ValueError(f"unknown audit action {action!r}")
    entry = AuditEntry(
        action=action,
        object_type=object_type,
        object_id=object_id,
        detail=_masked(detail or {}),
    )
    user = actor or (current_user if has_request_context() else None)
    if user is not None and user.is_authenticated:
        entry.actor_id = user.id
        entry.actor_label = actor_label or user.email
    else:
        entry.actor_label = actor_label or CLI_LABEL
    if has_request_context():
        entry.ip = (request.remote_addr or "")[:64]
    db.session.add(entry)
    return entry


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    if isinstance(value, str) and ("@" in value or _looks_like_phone(value)):
        return MASKED
    return value


def _looks_like_phone(text: str) -> bool:
    return any(
        sum(c.isdigit() for c in m.group(0)) >= _PHONE_DIGITS for m in _PHONE_LIKE.finditer(text)
    )


@dataclass(frozen=True)
class AuditFilters:
    action: str = ""
    prospect_id: int | None = None

    def as_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if self.action:
            args["action"] = self.action
        if self.prospect_id:
            args["personne"] = self.prospect_id
        return args


def entries(filters: AuditFilters, page: int, per_page: int) -> Pagination:
    """Newest first; the prospect filter also finds the retention and erasure entries."""
    query = sa.select(AuditEntry)
    if filters.action:
        query = query.where(AuditEntry.action == filters.action)
    if filters.prospect_id:
        query = query.where(
            AuditEntry.object_type == "prospect", AuditEntry.object_id == filters.prospect_id
        )
    query = query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    return db.paginate(query, page=page, per_page=per_page, error_out=False)
