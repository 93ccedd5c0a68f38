"""`make prod-local`: the production layout of docker-compose.yml on this machine, without Docker.

    .venv/bin/python -m deploy.prod_local                  # start, Ctrl-C (or SIGTERM) stops all
    .venv/bin/python -m deploy.prod_local --port 8000 --workers 3
    make prod-local / make prod-local-stop

It starts, with the commands of docker-compose.yml: its own PostgreSQL (a cluster made with
`initdb` under the state folder, run as the `postgres` user when started by root) and its own
Redis (nothing kept on disk), `flask db upgrade`, gunicorn with 2 workers behind one port,
3 RQ workers (`workers.worker.AppSimpleWorker`), the dispatcher (`rq cron workers/cron.py`),
the fake Twilio server (tests/fakes/twilio_server.py, which the app's real `twilio` client
talks to) and a local SMTP server (tests/fakes/smtp_server.py). Like `restart: unless-stopped`,
a process that dies is started again, unless it was stopped on purpose (`stop_service`).

The fault suite (tests/faults/) and the load run (bench/load.py) drive the same class,
`ProdLocal`, in their own process: kill a worker, restart Redis empty, stop PostgreSQL...
Everything listens on 127.0.0.1 only. Each process's output goes to <state>/logs/<name>.log.
"""

from __future__ import annotations

import argparse
import os
import pwd
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_BIN = (
    Path(sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1])
    if Path("/usr/lib/postgresql").exists()
    else Path("/usr/bin")
)
DEFAULT_STATE = Path(os.environ.get("CRM_PROD_LOCAL_DIR", "/tmp/openlab-prod-local"))
QUEUES = ["dispatch", "messages", "imports", "default"]  # as in docker-compose.yml
ACCOUNT_SID = "AC" + "0" * 31 + "1"  # the fake Twilio's account (tests/fakes/twilio_server.py)
AUTH_TOKEN = "fake-auth-token"
INITDB_OPTIONS = ["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]
SENDER = "+33757000000"  # a two-way number: people can answer by SMS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Ports:
    web: int = 8000
    postgres: int = 55432
    redis: int = 56379
    twilio: int = 58080
    smtp: int = 58025

    @classmethod
    def free(cls) -> Ports:
        return cls(free_port(), free_port(), free_port(), free_port(), free_port())


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    user: str | None = None  # run as this user (PostgreSQL refuses to run as root)
    process: subprocess.Popen[bytes] | None = None
    wanted: bool = True  # False once stopped on purpose: the supervisor leaves it down
    restarts: int = 0


@dataclass
class ProdLocal:
    """The layout; `start()` then `stop()`, or `with ProdLocal(...) as layout:`."""

    state: Path = DEFAULT_STATE
    ports: Ports = field(default_factory=Ports)
    workers: int = 3
    web_workers: int = 2
    env_overrides: dict[str, str] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _supervisor: threading.Thread | None = None

    # --- addresses and environment -----------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.web}"

    @property
    def database_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.ports.postgres}/crm"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports.redis}/0"

    @property
    def twilio_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.twilio}"

    @property
    def mail_log(self) -> Path:
        return self.state / "mails.jsonl"

    def app_env(self) -> dict[str, str]:
        """The environment docker-compose.yml gives the app, pointed at the local services."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "TWILIO_"))}
        for key in ("DATABASE_URL", "REDIS_URL", "SMTP_URL", "TEST_DATABASE_URL"):
            env.pop(key, None)
        env.update(
            CRM_ENV="production",
            CRM_INSTANCE_DIR=str(self.state / "instance"),
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            SECRET_KEY=self._secret_key(),
            PUBLIC_BASE_URL=self.url,
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            TWILIO_SENDER=SENDER,
            TWILIO_BASE_URL=self.twilio_url,
            SMTP_URL=f"smtp://127.0.0.1:{self.ports.smtp}",
            MAIL_FROM="Open Lab <open-lab@crm.example>",
            FLASK_APP="wsgi:app",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.env_overrides)
        return env

    def _secret_key(self) -> str:
        path = self.state / "secret_key"
        if not path.exists():
            path.write_text(secrets.token_hex(32))
        return path.read_text().strip()

    # --- the processes -----------------------------------------------------------------------

    def _define(self) -> None:
        env, py = self.app_env(), str(BIN / "python")
        pg_user = "postgres" if os.geteuid() == 0 else None
        sockets = self.state / "pg-socket"
        self.services = {
            "postgres": Service(
                "postgres",
                [
                    str(PG_BIN / "postgres"),
                    "-D",
                    str(self.state / "pg"),
                    "-p",
                    str(self.ports.postgres),
                    "-k",
                    str(sockets),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "max_connections=200",
                ],
                user=pg_user,
            ),
            "redis": Service(
                "redis",
                [
                    shutil.which("redis-server") or "redis-server",
                    "--port",
                    str(self.ports.redis),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
            ),
            "twilio": Service(
                "twilio",
                [py, "-m", "tests.fakes.twilio_server", "--port", str(self.ports.twilio)],
            ),
            "smtp": Service(
                "smtp",
                [
                    py,
                    "-m",
                    "tests.fakes.smtp_server",
                    "--port",
                    str(self.ports.smtp),
                    "--log",
                    str(self.mail_log),
                ],
            ),
            "web": Service(
                "web",
                [
                    str(BIN / "gunicorn"),
                    "--bind",
                    f"127.0.0.1:{self.ports.web}",
                    "--workers",
                    str(self.web_workers),
                    "--control-socket",  # one per layout (the default is one per user)
                    str(self.state / "gunicorn.ctl"),
                    "wsgi:app",
                ],
                env,
            ),
            "dispatcher": Service(
                "dispatcher",
                [str(BIN / "rq"), "cron", "--url", self.redis_url, "workers/cron.py"],
                env,
            ),
        }
        for number in range(1, self.workers + 1):
            name = f"worker-{number}"
            self.services[name] = Service(
                name,
                [
                    str(BIN / "rq"),
                    "worker",
                    "--worker-class=workers.worker.AppSimpleWorker",
                    "--with-scheduler",
                    "--url",
                    self.redis_url,
                    *QUEUES,
                ],
                env,
            )

    def _spawn(self, service: Service) -> None:
        log = (self.state / "logs" / f"{service.name}.log").open("ab")
        kwargs: dict[str, object] = {}
        if service.user:
            record = pwd.getpwnam(service.user)
            kwargs.update(user=record.pw_uid, group=record.pw_gid, extra_groups=[])
        service.process = subprocess.Popen(
            service.argv,
            cwd=ROOT,
            env=service.env or {**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in a terminal reaches the supervisor only
            **kwargs,  # type: ignore[arg-type]
        )
        log.close()

    def start(self) -> ProdLocal:
        """Start everything and wait until /healthz is green; on failure, stop what started."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> ProdLocal:
        for folder in ("logs", "instance", "pg-socket"):
            (self.state / folder).mkdir(parents=True, exist_ok=True)
        self._define()
        self._init_postgres()
        for name in ("postgres", "redis", "twilio", "smtp"):
            self._spawn(self.services[name])
        self._wait_postgres()
        self._wait_port(self.ports.redis, "redis")
        self._create_database()
        subprocess.run(
            [str(BIN / "flask"), "db", "upgrade"],
            cwd=ROOT,
            env=self.app_env(),
            check=True,
            capture_output=True,
        )
        for service in self.services.values():
            if service.process is None:
                self._spawn(service)
        self._wait_port(self.ports.twilio, "twilio")
        self._wait_port(self.ports.smtp, "smtp")
        self.wait_healthy()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        self._supervisor.start()
        return self

    def _init_postgres(self) -> None:
        data = self.state / "pg"
        if (data / "PG_VERSION").exists():
            return
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            for folder in (self.state, data, self.state / "pg-socket"):
                shutil.chown(folder, "postgres", "postgres")
            self.state.chmod(0o755)
        record = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        # (the state folder's parents must let the postgres user through: /tmp does)
        subprocess.run(
            [str(PG_BIN / "initdb"), "-D", str(data), *INITDB_OPTIONS],
            check=True,
            capture_output=True,
            user=record.pw_uid if record else None,
            group=record.pw_gid if record else None,
            extra_groups=[] if record else None,
        )

    def _wait_postgres(self, timeout: float = 60) -> None:
        """Until PostgreSQL accepts connections (its port opens before it is ready)."""
        deadline = time.monotonic() + timeout
        port = str(self.ports.postgres)
        ready = [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", port]
        while subprocess.run(ready, check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL is not ready: see {self.state}/logs/postgres.log")
            time.sleep(0.3)

    def _create_database(self) -> None:
        psql = [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.ports.postgres)]
        psql += ["-U", "postgres", "-Atc"]
        exists = subprocess.run(
            [*psql, "SELECT 1 FROM pg_database WHERE datname = 'crm'"],
            capture_output=True,
            text=True,
            check=True,
        )
        if exists.stdout.strip() != "1":
            subprocess.run([*psql, "CREATE DATABASE crm"], check=True, capture_output=True)

    def _wait_port(self, port: int, name: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{name} does not answer on 127.0.0.1:{port}: see {self.state}/logs")

    def wait_healthy(self, timeout: float = 90) -> None:
        """Until /healthz answers 200 (the database and Redis answer the web app)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=3) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.url}/healthz is not healthy: see {self.state}/logs")

    def _supervise(self) -> None:
        """restart: unless-stopped: a process that died is started again after a second."""
        while not self._stopping.wait(0.5):
            with self._lock:
                for service in self.services.values():
                    process = service.process
                    if service.wanted and process is not None and process.poll() is not None:
                        time.sleep(1.0 if service.restarts else 0.2)
                        service.restarts += 1
                        self._spawn(service)

    def stop(self) -> None:
        """Stop everything: the app first, PostgreSQL (fast shutdown) and Redis last."""
        self._stopping.set()
        if not self.services:
            return
        if self._supervisor:
            self._supervisor.join(timeout=5)
        order = [n for n in self.services if n not in ("postgres", "redis")]
        for name in [*order, "redis", "postgres"]:
            if name in self.services:
                self.stop_service(name)

    def __enter__(self) -> ProdLocal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what the fault suite does to it -----------------------------------------------------

    def stop_service(self, name: str, timeout: float = 20) -> None:
        """Stop one process cleanly (SIGTERM; SIGINT for PostgreSQL: fast shutdown) and keep
        it down until `start_service`."""
        with self._lock:
            service = self.services[name]
            service.wanted = False
            process = service.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT if name == "postgres" else signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def start_service(self, name: str) -> None:
        with self._lock:
            service = self.services[name]
            service.wanted = True
            if service.process is None or service.process.poll() is not None:
                self._spawn(service)
        if name == "postgres":
            self._wait_postgres()
        elif name == "redis":
            self._wait_port(self.ports.redis, name)

    def kill(self, name: str) -> int:
        """SIGKILL one process (the supervisor starts it again); returns its pid."""
        with self._lock:
            process = self.services[name].process
            assert process is not None
            pid = process.pid
            os.killpg(pid, signal.SIGKILL)  # the work horse and its children too
        return pid

    def kill_random_worker(self, rng: random.Random) -> str:
        name = rng.choice([n for n in self.services if n.startswith("worker-")])
        self.kill(name)
        return name

    def restart_redis_wiped(self) -> None:
        """Redis restarted with nothing in it (no persistence): every queued job is lost."""
        self.stop_service("redis")
        self.start_service("redis")

    @contextmanager
    def postgres_down(self, seconds: float) -> Iterator[None]:
        self.stop_service("postgres")
        try:
            yield
            time.sleep(seconds)
        finally:
            self.start_service("postgres")

    def program_twilio(self, **rule: object) -> None:
        """The fake provider's behaviour for every number: delay, http_status, error_code."""
        self._fake_post("/_fake/program", {k: str(v) for k, v in rule.items()})

    def reset_twilio(self) -> None:
        self._fake_post("/_fake/reset", {})

    def _fake_post(self, path: str, form: dict[str, str]) -> None:
        request = urllib.request.Request(
            self.twilio_url + path, data=urlencode(form).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=5):
            pass

    def twilio_sent(self) -> list[dict[str, object]]:
        import json

        with urllib.request.urlopen(self.twilio_url + "/_fake/sent", timeout=30) as answer:
            return list(json.load(answer)["messages"])


def main() -> int:
    parser = argparse.ArgumentParser(description="Open Lab CRM, production layout, locally.")
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE, help="state folder")
    parser.add_argument("--port", type=int, default=8000, help="the web port")
    parser.add_argument("--workers", type=int, default=3, help="RQ workers")
    parser.add_argument("--stop", action="store_true", help="stop a running layout")
    args = parser.parse_args()
    pidfile = args.state / "prod-local.pid"
    if args.stop:
        if not pidfile.exists():
            print("Aucune pile prod-local en cours.")
            return 0
        os.kill(int(pidfile.read_text()), signal.SIGTERM)
        for _ in range(120):
            if not pidfile.exists():
                return 0
            time.sleep(0.5)
        print("La pile ne s'est pas arrêtée en 60 s.", file=sys.stderr)
        return 1
    layout = ProdLocal(state=args.state, ports=Ports(web=args.port), workers=args.workers)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    args.state.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(str(os.getpid()))
    try:
        layout.start()
        print(
            f"Open Lab CRM (production locale) : {layout.url}\n"
            f"  PostgreSQL {layout.database_url}\n  Redis {layout.redis_url}\n"
            f"  faux Twilio {layout.twilio_url}  SMTP 127.0.0.1:{layout.ports.smtp} "
            f"(courriels reçus : {layout.mail_log})\n"
            f"  journaux : {args.state}/logs ; Ctrl-C ou `make prod-local-stop` pour arrêter.",
            flush=True,
        )
        stop.wait()
        return 0
    finally:
        layout.stop()
        pidfile.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
