"""Every model, imported here so that Alembic and the app see the whole schema."""

from crm.models.event import AppendOnlyError, Event
from crm.models.lab import Lab, Source
from crm.models.message import Message
from crm.models.prospect import Consent, Prospect
from crm.models.registration import Registration
from crm.models.user import User

__all__ = [
    "AppendOnlyError",
    "Consent",
    "Event",
    "Lab",
    "Message",
    "Prospect",
    "Registration",
    "Source",
    "User",
]
