"""Subprocesses that share a test session's state: Celery workers and the ASGI server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
WORKER_START_TIMEOUT_S = 90


def subprocess_env() -> dict[str, str]:
    """The environment a worker or server needs to share this test session's state."""
    database = connection.settings_dict
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    if database["ENGINE"].endswith("sqlite3"):
        url = f"sqlite:///{database['NAME']}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webui.settings",
        "DATABASE_URL": url,
        "REDIS_URL": settings.REDIS_URL,
        "FLOTILLA_ARTIFACT_DIR": str(settings.FLOTILLA_ARTIFACT_DIR),
        "FLOTILLA_DATA_DIR": str(settings.FLOTILLA_DATA_DIR),
        "FLOTILLA_MODEL_DIR": str(settings.FLOTILLA_MODEL_DIR),
        "SECRET_KEY": settings.SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
        # Workers shared across tests sweep (services.recovery.work_reclaim) only when they start:
        # a periodic sweep would lock rows while a transactional test's teardown truncates the
        # tables (a PostgreSQL deadlock). Fault tests pass a short period of their own.
        "FLOTILLA_RECLAIM_SECONDS": "86400",
    }


def spawn(command: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`command` in the repository, its output appended to `log`, in a session of its own (so
    `kill` takes its children with it)."""
    with log.open("ab") as stream:
        return subprocess.Popen(
            command, cwd=REPO, env=env, stdout=stream, stderr=stream, start_new_session=True
        )


def start_worker(name: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A real `celery worker` on the jobs, clients and hpo queues, answering pings when this
    returns. It runs in a session of its own, so `kill` takes its pool children with it.
    `env` adds to (or overrides) `subprocess_env()`, e.g. shorter leases for fault tests."""
    from webui.celery import app

    command = [
        str(VENV_BIN / "celery"),
        *("-A", "webui", "worker", "-Q", "jobs,clients,hpo", "-c", "2"),
        *("--without-mingle", "--without-gossip", "-n", name, "-l", "info"),
    ]
    process = spawn(command, log, {**subprocess_env(), **(env or {})})
    deadline = time.monotonic() + WORKER_START_TIMEOUT_S
    try:
        while not app.control.ping(destination=[name], timeout=1.0):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker {name} did not start:\n{log.read_text()[-3000:]}")
    except BaseException:
        stop(process)  # not returned, so no caller would stop it
        raise
    return process


def worker_name(role: str) -> str:
    return f"{role}-{os.getpid()}@{socket.gethostname()}"


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ask politely (a warm shutdown), then kill."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def kill(process: subprocess.Popen[bytes]) -> None:
    """What a crashed host looks like: the worker and its pool children die at once."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop(process)
                raise RuntimeError(f"nothing listens on port {port}:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.1)


def start_server(port: int, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """The ASGI app under uvicorn on `port`, in a session of its own (`kill` ends it at once)."""
    command = [
        str(VENV_BIN / "uvicorn"),
        "webui.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    process = spawn(command, log, {**subprocess_env(), **(env or {})})
    wait_for_port(port, process, log)
    return process


def start_redis(port: int, log: Path) -> subprocess.Popen[bytes]:
    """A private, forgetful redis-server (no RDB, no AOF) on `port`: a restart loses every queue."""
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--daemonize", "no"]
    process = spawn(command, log)
    wait_for_port(port, process, log, timeout=20)
    return process


def process_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def process_group_members(pgid: int) -> list[int]:
    """The live processes in process group `pgid` (Linux /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members
