"""Every model, imported here so that Alembic and the app see the whole schema."""

from crm.models.call import Call, CallTask
from crm.models.event import AppendOnlyError, Event
from crm.models.followup import FollowUp, Sequence, SequenceStep
from crm.models.imports import ImportBatch, ImportRejection
from crm.models.inbound import InboundMessage
from crm.models.lab import Lab, Source
from crm.models.message import EarlyReceipt, Message
from crm.models.offer import PlaceOffer
from crm.models.privacy import AuditEntry, Suppression
from crm.models.prospect import Consent, Prospect
from crm.models.registration import Registration
from crm.models.user import User

__all__ = [
    "AppendOnlyError",
    "AuditEntry",
    "Call",
    "CallTask",
    "Consent",
    "EarlyReceipt",
    "Event",
    "FollowUp",
    "ImportBatch",
    "ImportRejection",
    "InboundMessage",
    "Lab",
    "Message",
    "PlaceOffer",
    "Prospect",
    "Registration",
    "Sequence",
    "SequenceStep",
    "Source",
    "Suppression",
    "User",
]
