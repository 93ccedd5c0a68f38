"""Open Lab CRM: the Flask application factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from crm import security
from crm.config import PROJECT_ROOT, Config, ConfigError
from crm.extensions import csrf, db, limiter, login_manager, migrate


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app from `config` (tests) or from the environment."""
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
        instance_path=str(PROJECT_ROOT / "instance"),
    )
    app.config.update(config if config is not None else Config.from_env())
    _resolve_redis_url(app)
    hops = int(app.config.get("PROXY_HOPS", 0))
    if hops:  # behind the TLS proxy: the client's address and scheme from its headers
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    _configure_limiter(app)
    security.init_app(app)

    from crm import models  # noqa: F401  (registers every table)
    from crm.cli import register_cli
    from crm.views import register_views

    register_views(app)
    register_cli(app)
    return app


def _configure_limiter(app: Flask) -> None:
    """Rate-limit counters in the app's Redis, shared by every web process."""
    url = app.config["REDIS_URL"]
    if url.startswith("unix://"):
        url = "redis+unix://" + url[len("unix://") :]
    app.config.setdefault("RATELIMIT_STORAGE_URI", url)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "crm-limits")
    # Redis down must not lock everyone out: the limit is skipped, the rest reports the outage.
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", False)
    limiter.init_app(app)


def _resolve_redis_url(app: Flask) -> None:
    """REDIS_URL, or the embedded Redis under instance/ outside production."""
    if app.config.get("REDIS_URL"):
        return
    if app.config.get("CRM_ENV") == "production":
        raise ConfigError("REDIS_URL est obligatoire en production (CRM_ENV=production).")
    from crm.embedded_redis import ensure_embedded_redis

    app.config["REDIS_URL"] = ensure_embedded_redis(Path(app.config["INSTANCE_DIR"]))
