"""The app's Redis connection (carries work only: the database is the record)."""

from __future__ import annotations

import redis
from flask import current_app


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def get_redis() -> redis.Redis:
    conn = current_app.extensions.get("crm_redis")
    if conn is None:
        conn = connect(current_app.config["REDIS_URL"])
        current_app.extensions["crm_redis"] = conn
    return conn
