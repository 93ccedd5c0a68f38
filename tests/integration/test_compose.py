"""docker-compose.yml describes the production layout, and every command it runs exists here.

Docker cannot run in the test environment: the file is parsed, and each service's command is
checked against the project (entry points, queue names, cron config) and the installed tools.
"""

from __future__ import annotations

import ast
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from workers.queues import QUEUE_NAMES

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
APP_SERVICES = ("web", "worker", "dispatcher")
SHARED_ENV = {
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "PUBLIC_BASE_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_SENDER",
    "SMTP_URL",
    "MAIL_FROM",
    "CRM_TIMEZONE",
    "CRM_ENV",
}


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, written as a mapping or as a list of KEY=value."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def commands(service: dict[str, Any]) -> list[list[str]]:
    """The argv of each command a service runs: `sh -c "a && exec b"` gives [a, b]."""
    command = service.get("command")
    assert command, "no command"
    if isinstance(command, list) and command[:2] in (["sh", "-c"], ["/bin/sh", "-c"]):
        script = command[2]
    elif isinstance(command, str):
        script = command
    else:
        return [[str(part) for part in command]]
    argvs = []
    for part in script.split("&&"):
        argv = shlex.split(part)
        if argv and argv[0] == "exec":
            argv = argv[1:]
        argvs.append(argv)
    return argvs


def command_named(service: dict[str, Any], executable: str) -> list[str]:
    found = [argv for argv in commands(service) if argv and Path(argv[0]).name == executable]
    assert len(found) == 1, f"expected one `{executable}` command in {service.get('command')!r}"
    return found[0]


def option(argv: list[str], name: str) -> str:
    assert name in argv, f"{name} missing from {shlex.join(argv)}"
    return argv[argv.index(name) + 1]


def top_level_names(node: ast.stmt) -> set[str]:
    """The names a top-level statement binds (assignment, def, class or import)."""
    if isinstance(node, ast.Assign):
        return {t.id for t in node.targets if isinstance(t, ast.Name)}
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return {node.target.id}
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.ImportFrom | ast.Import):
        return {alias.asname or alias.name for alias in node.names}
    return set()


def module_defines(path: Path, name: str) -> bool:
    """True when the module assigns, defines or imports `name` at top level."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return any(name in top_level_names(node) for node in tree.body)


def test_the_five_services_are_declared(services):
    assert set(services) >= {"postgres", "redis", *APP_SERVICES}
    assert str(services["postgres"]["image"]).startswith("postgres:16")
    assert "healthcheck" in services["postgres"]
    assert str(services["redis"]["image"]).startswith("redis:7")


def test_app_services_share_one_image_and_one_environment(services):
    envs = {name: environment(services[name]) for name in APP_SERVICES}
    for name, env in envs.items():
        missing = SHARED_ENV - set(env)
        assert not missing, f"{name} lacks {sorted(missing)}"
        assert set(env) == set(envs["web"]), f"{name} and web have different variables"
        assert env["CRM_ENV"] == "production", name
        assert env["DATABASE_URL"].startswith("postgresql"), name
        assert services[name].get("build") == services["web"].get("build"), name
    assert services["web"].get("build") in (".", {"context": "."})
    assert len({tuple(sorted(env.items())) for env in envs.values()}) == 1, "values differ"


def test_the_dockerfile_installs_the_app_and_the_dsfr():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "npm ci --ignore-scripts" in dockerfile
    assert "pip install" in dockerfile
    assert (ROOT / "package-lock.json").exists()


def test_web_migrates_then_serves_wsgi_app(services):
    argvs = commands(services["web"])
    names = [Path(argv[0]).name for argv in argvs]
    assert names.index("flask") < names.index("gunicorn"), "migrate before serving"
    assert command_named(services["web"], "flask")[1:] == ["db", "upgrade"]
    gunicorn = command_named(services["web"], "gunicorn")
    module, _, attribute = gunicorn[-1].partition(":")
    path = ROOT / f"{module.replace('.', '/')}.py"
    assert path.exists(), f"gunicorn points at {gunicorn[-1]} but {path} does not exist"
    assert module_defines(path, attribute), f"{path.name} does not define {attribute}"
    assert option(gunicorn, "--bind").endswith(":8000")


def test_worker_serves_every_known_queue_with_the_scheduler(services):
    argv = command_named(services["worker"], "rq")
    assert argv[1] == "worker"
    assert "--with-scheduler" in argv
    assert "REDIS_URL" in option(argv, "--url")
    queues = [a for a in argv[2:] if not a.startswith("-") and "REDIS_URL" not in a]
    assert queues, "the worker names no queue"
    unknown = set(queues) - set(QUEUE_NAMES)
    assert not unknown, f"queues {sorted(unknown)} are not in workers.queues.QUEUE_NAMES"
    assert set(queues) == set(QUEUE_NAMES), "a queue in QUEUE_NAMES has no worker"


def test_dispatcher_runs_rq_cron_on_a_config_registering_dispatch_due(services):
    argv = command_named(services["dispatcher"], "rq")
    assert argv[1] == "cron"
    assert "REDIS_URL" in option(argv, "--url")
    config = ROOT / argv[-1]
    assert config.exists(), f"rq cron config {argv[-1]} not found"
    tree = ast.parse(config.read_text())
    registered = {
        ast.unparse(call.args[0])
        for call in ast.walk(tree)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "register"
        and call.args
    }
    for job in ("dispatch_due", "refresh_dashboards"):
        assert job in registered, f"{argv[-1]} registers {sorted(registered)}"
        assert module_defines(config, job)
        assert module_defines(ROOT / "workers" / "jobs.py", job)


@pytest.mark.parametrize("executable", ["gunicorn", "rq", "flask"])
def test_the_executables_are_installed(executable):
    assert (BIN / executable).exists(), f"{executable} is not installed in {BIN}"


def test_rq_knows_the_subcommands_and_options_used():
    for sub, opt in (("worker", "--with-scheduler"), ("cron", "--url")):
        result = subprocess.run(
            [str(BIN / "rq"), sub, "--help"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert opt in result.stdout, f"`rq {sub}` has no {opt}"
