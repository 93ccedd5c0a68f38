"""Roles checked in the services too, not only on the routes: a manager-only action refuses a
caller whichever way it is reached (a view, a job, a script). `actor=None` is the system
itself (RQ jobs, `flask crm` commands run by an operator) and is allowed."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from crm.models import User

MANAGERS = ("manager", "admin")
F = TypeVar("F", bound=Callable[..., Any])


class PermissionDenied(PermissionError):
    """The actor's role does not allow this action; the message is in French."""


def require(actor: User | None, *roles: str) -> None:
    if actor is not None and actor.role not in roles:
        raise PermissionDenied("Action réservée aux responsables de l'open lab.")


def require_manager_id(actor_id: int | None) -> None:
    """`require` for services that receive the actor's id (imports)."""
    if actor_id is not None:
        from crm.extensions import db

        require(db.session.get(User, actor_id), *MANAGERS)


def managers_only(func: F) -> F:
    """The decorated service refuses an `actor` who is not a manager or an admin."""
    signature = inspect.signature(func)
    if "actor" not in signature.parameters:
        raise TypeError(f"{func.__qualname__} has no `actor` parameter to check")

    @wraps(func)
    def checked(*args: Any, **kwargs: Any) -> Any:
        require(signature.bind_partial(*args, **kwargs).arguments.get("actor"), *MANAGERS)
        return func(*args, **kwargs)

    return checked  # type: ignore[return-value]
