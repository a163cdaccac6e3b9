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
    }


def start_worker(name: str, log: Path) -> subprocess.Popen[bytes]:
    """A real `celery worker` on the jobs, clients and hpo queues, answering pings when this
    returns. It runs in a session of its own, so `kill` takes its pool children with it."""
    from webui.celery import app

    command = [
        str(VENV_BIN / "celery"),
        *("-A", "webui", "worker", "-Q", "jobs,clients,hpo", "-c", "2"),
        *("--without-mingle", "--without-gossip", "-n", name, "-l", "info"),
    ]
    with log.open("ab") as stream:
        process = subprocess.Popen(
            command, cwd=REPO, env=subprocess_env(), stdout=stream, stderr=stream, start_new_session=True
        )
    deadline = time.monotonic() + WORKER_START_TIMEOUT_S
    while not app.control.ping(destination=[name], timeout=1.0):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"the Celery worker {name} did not start:\n{log.read_text()[-3000:]}")
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
