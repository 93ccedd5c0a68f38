"""Error pages: DSFR, in French, never a stack trace."""

from __future__ import annotations

import logging

import redis
import sqlalchemy as sa
from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from crm.extensions import db
from crm.services.permissions import PermissionDenied

log = logging.getLogger(__name__)

MESSAGES = {
    400: (
        "Requête incorrecte",
        "La demande n'a pas pu être traitée. Vérifiez les informations saisies.",
    ),
    403: ("Accès refusé", "Votre compte ne permet pas d'accéder à cette page."),
    404: (
        "Page non trouvée",
        "La page que vous cherchez est introuvable. Vérifiez l'adresse saisie.",
    ),
    405: ("Action non autorisée", "Cette action n'est pas possible sur cette page."),
    413: ("Fichier trop volumineux", "Le fichier envoyé dépasse la taille autorisée."),
    429: (
        "Trop de tentatives",
        "Trop de demandes en peu de temps. Réessayez dans quelques minutes.",
    ),
    500: ("Erreur inattendue", "Une erreur est survenue de notre côté. Réessayez dans un moment."),
    503: (
        "Service momentanément indisponible",
        "Le service ne peut pas accéder à ses données pour l'instant. Aucune donnée n'a été "
        "perdue : réessayez dans quelques instants.",
    ),
}


def render_error(code: int, detail: str | None = None) -> tuple[str, int]:
    title, text = MESSAGES.get(code, MESSAGES[500])
    return render_template("errors/error.html", code=code, title=title, text=detail or text), code


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> tuple[str, int]:
        return render_error(
            400,
            "Le formulaire a expiré ou n'est pas valide (jeton de sécurité absent). "
            "Rechargez la page et recommencez.",
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[str, int]:
        return render_error(exc.code or 500)

    @app.errorhandler(PermissionDenied)
    def not_allowed(exc: PermissionDenied) -> tuple[str, int]:
        _rollback_quietly()
        return render_error(403)

    @app.errorhandler(OverflowError)
    @app.errorhandler(sa.exc.DataError)
    def out_of_range(exc: Exception) -> tuple[str, int]:
        # An id or page number too large for the database: nothing can exist there.
        _rollback_quietly()
        return render_error(404)

    @app.errorhandler(sa.exc.OperationalError)
    @app.errorhandler(redis.ConnectionError)
    @app.errorhandler(redis.TimeoutError)
    def backend_down(exc: Exception) -> tuple[str, int]:
        log.error("backend unavailable on %s: %s", request.path, exc)
        _rollback_quietly()
        return render_error(503)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[str, int]:
        log.exception("unhandled error on %s", request.path)
        _rollback_quietly()
        return render_error(500)


def _rollback_quietly() -> None:
    try:
        db.session.rollback()
    except Exception:  # the database may be the thing that is down
        log.debug("rollback failed", exc_info=True)
