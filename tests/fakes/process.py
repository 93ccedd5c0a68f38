"""Run a fake server as its own process until SIGTERM or Ctrl-C (make prod-local)."""

from __future__ import annotations

import signal
import threading
from contextlib import AbstractContextManager
from typing import Any


def serve_until_stopped(server: AbstractContextManager[Any], label: str) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with server:
        print(label, flush=True)
        stop.wait()
