"""`make run`: migrate, seed the demo on an empty database, then run web, worker and dispatcher.

All three processes get the same REDIS_URL (the embedded Redis's unix socket when none is
configured) and stop together on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from crm.config import PROJECT_ROOT, Config
from crm.embedded_redis import ensure_embedded_redis, stop_embedded_redis
from workers.queues import QUEUE_NAMES

BIN = Path(sys.executable).parent
# The app is built once per worker and jobs run in that process (docs/benchmarks.md).
WORKER_CLASS = "workers.worker.AppSimpleWorker"


def _env(instance_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    if not env.get("REDIS_URL"):
        env["REDIS_URL"] = ensure_embedded_redis(instance_dir)
    env.setdefault("FLASK_APP", "wsgi:app")
    return env


def _commands(env: dict[str, str]) -> dict[str, list[str]]:
    host, port = env.get("CRM_HOST", "127.0.0.1"), env.get("CRM_PORT", "5000")
    return {
        "web": [str(BIN / "flask"), "run", "--host", host, "--port", port],
        "worker": [
            str(BIN / "rq"),
            "worker",
            f"--worker-class={WORKER_CLASS}",
            "--with-scheduler",
            "--url",
            env["REDIS_URL"],
            *QUEUE_NAMES,
        ],
        "dispatcher": [str(BIN / "rq"), "cron", "--url", env["REDIS_URL"], "workers/cron.py"],
    }


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # `kill` stops everything as cleanly as Ctrl-C


def main() -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    instance_dir = Path(Config.from_env()["INSTANCE_DIR"])
    embedded = not os.environ.get("REDIS_URL")
    env = _env(instance_dir)
    flask = str(BIN / "flask")
    subprocess.run([flask, "db", "upgrade"], env=env, cwd=PROJECT_ROOT, check=True)
    subprocess.run([flask, "crm", "seed-demo", "--if-empty"], env=env, cwd=PROJECT_ROOT, check=True)
    processes = {
        name: subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT)
        for name, cmd in _commands(env).items()
    }
    print(
        f"Open Lab CRM : http://{env.get('CRM_HOST', '127.0.0.1')}:{env.get('CRM_PORT', '5000')}"
        " (Ctrl-C pour tout arrêter)",
        flush=True,
    )
    try:
        while all(p.poll() is None for p in processes.values()):
            time.sleep(0.5)
        dead = [name for name, p in processes.items() if p.poll() is not None]
        print(f"Processus arrêté : {', '.join(dead)} ; arrêt des autres.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for p in processes.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in processes.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if embedded:
            stop_embedded_redis(instance_dir)


if __name__ == "__main__":
    sys.exit(main())
