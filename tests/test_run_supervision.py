"""`./run` supervises its children: a killed worker or web server is started again while
the others keep running, and SIGINT to ./run stops all of them.

Runs the real ./run from the repository with settings of its own (a free port, SQLite,
directories and Redis key prefix under a temporary directory, pid files in its own
FLOTILLA_RUN_DIR), so a developer's ./run is not disturbed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from .processes import REPO, free_port, process_alive, process_group_members

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REDIS_URL = "redis://127.0.0.1:6379/14"
START_TIMEOUT_S = 300  # the first ./run may reinstall .venv (pyproject.toml changed)
RESTART_TIMEOUT_S = 30
STOP_TIMEOUT_S = 20


class Run:
    """One `./run` in a process group of its own, and where it keeps its pid files."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.run_dir = tmp_path / "run"
        self.output = tmp_path / "run.out"
        self.children: set[int] = set()
        self.prefix = f"flotilla-run-test-{uuid.uuid4().hex[:8]}:"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "webui.settings",
            "FLOTILLA_PORT": str(self.port),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "REDIS_URL": REDIS_URL,
            "FLOTILLA_REDIS_PREFIX": self.prefix,
            "FLOTILLA_WORKER_CONCURRENCY": "1",
            "FLOTILLA_ADMIN_PASSWORD": "a-long-test-password",
            "FLOTILLA_DATA_DIR": str(tmp_path / "data"),
            "FLOTILLA_ARTIFACT_DIR": str(tmp_path / "artifacts"),
            "FLOTILLA_MODEL_DIR": str(tmp_path / "models"),
            "FLOTILLA_LOG_DIR": str(tmp_path / "log"),
            "FLOTILLA_RUN_DIR": str(self.run_dir),
            "FLOTILLA_DOWNLOAD": "0",
            "SECRET_KEY": "flotilla-run-test-only",
            "PYTHONUNBUFFERED": "1",
        }
        with self.output.open("wb") as stream:
            self.process = subprocess.Popen(
                [str(REPO / "run")], cwd=REPO, env=env, stdout=stream, stderr=stream, start_new_session=True
            )

    def log(self) -> str:
        return self.output.read_text(errors="replace")[-4000:]

    def pid(self, name: str) -> int | None:
        """The child's pid (also its process group: ./run gives each child one), noted for cleanup."""
        try:
            pid = int((self.run_dir / f"{name}.pid").read_text())
        except (FileNotFoundError, ValueError):
            return None
        self.children.add(pid)
        return pid

    def healthz(self) -> int | None:
        """The HTTP status /healthz answers with (503 while no worker answers), None if none."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None

    def wait_for(self, what: str, condition: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"./run exited ({self.process.returncode}) waiting for {what}:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout_s} s:\n{self.log()}")
            time.sleep(0.2)


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    started = Run(tmp_path)
    try:
        yield started
    finally:
        # The safety net: ./run's process group, and each child's own group (job control).
        for group in {started.process.pid, *started.children}:
            if process_group_members(group):
                os.killpg(group, signal.SIGKILL)
        if started.process.poll() is None:
            started.process.wait(timeout=10)
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=f"{started.prefix}*", count=500):
            client.delete(key)


def test_run_restarts_a_killed_child_and_stops_on_sigint(run: Run) -> None:
    run.wait_for("healthy /healthz", lambda: run.healthz() == 200, START_TIMEOUT_S)
    worker, web = run.pid("worker"), run.pid("web")
    assert worker and web and process_alive(worker) and process_alive(web)

    # A crashed worker comes back as a new process; the server keeps answering meanwhile.
    os.kill(worker, signal.SIGKILL)
    answers: list[int | None] = []

    def worker_restarted() -> bool:
        answers.append(run.healthz())
        new = run.pid("worker")
        return new is not None and new != worker and process_alive(new)

    run.wait_for("new worker pid", worker_restarted, RESTART_TIMEOUT_S)
    assert all(status in (200, 503) for status in answers), answers
    assert run.pid("web") == web
    run.wait_for(
        "healthy /healthz after the worker's restart", lambda: run.healthz() == 200, RESTART_TIMEOUT_S
    )
    worker = run.pid("worker")
    assert worker is not None

    # A crashed web server comes back too, and the worker is left alone.
    os.kill(web, signal.SIGKILL)

    def web_restarted() -> bool:
        new = run.pid("web")
        return new is not None and new != web and run.healthz() == 200

    run.wait_for("/healthz from a restarted server", web_restarted, RESTART_TIMEOUT_S)
    assert run.pid("worker") == worker and process_alive(worker)
    # The killed server's worker processes went with it (they would hold the port).
    assert not process_group_members(web), process_group_members(web)
    out = run.output.read_text()
    assert "worker (pid" in out and "exited with status 137 (SIGKILL); restarting it in 1 s" in out, out

    web = run.pid("web")
    assert web is not None

    # SIGINT (Ctrl-C) to ./run stops it and every child promptly, and removes the pid files.
    run.process.send_signal(signal.SIGINT)
    run.process.wait(timeout=STOP_TIMEOUT_S)
    deadline = time.monotonic() + 5
    groups = (run.process.pid, worker, web)
    while any(process_group_members(group) for group in groups) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not process_group_members(run.process.pid), run.log()
    assert not process_group_members(worker) and not process_group_members(web), run.log()
    assert not list(run.run_dir.glob("*.pid")), list(run.run_dir.iterdir())
