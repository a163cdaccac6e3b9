"""HPO fixtures: an in-process broker that delivers the job tasks and HPO's tasks alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from orchestrator import queues, tasks
from orchestrator.hpo.services import _common as hpo_services_common
from orchestrator.hpo.services import storage
from orchestrator.services import _common as services_common

TASKS: dict[str, Callable[..., Any]] = {
    queues.ROUND_START_TASK: tasks.round_start_task,
    queues.CLIENT_TRAIN_TASK: tasks.client_train_task,
    queues.ROUND_FINISH_TASK: tasks.round_finish_task,
    queues.STUDY_TICK_TASK: tasks.study_tick_task,
    queues.SUGGESTIONS_TASK: tasks.suggestions_task,
}


class AllTasks:
    """Collects every task sent (countdowns ignored) and runs them in order when asked."""

    def __init__(self) -> None:
        self.queue: list[tuple[str, tuple[Any, ...]]] = []
        self.delivered: list[tuple[str, tuple[Any, ...]]] = []

    def send(self, name: str, *args: Any, countdown: float | None = None) -> None:
        self.queue.append((name, args))

    def deliver(self, *, times: int = 1, until: Callable[[], bool] | None = None, limit: int = 5000) -> int:
        """Run queued tasks (each `times` times) until none is left or `until()` holds."""
        ran = 0
        while self.queue and ran < limit and not (until and until()):
            name, args = self.queue.pop(0)
            for _ in range(times):
                TASKS[name](*args)
                self.delivered.append((name, args))
                ran += 1
        return ran


@pytest.fixture
def all_tasks(clean_services: None, monkeypatch: pytest.MonkeyPatch) -> AllTasks:
    """(`clean_services` empties the artifact directory: job ids restart in a new test database.)"""
    broker = AllTasks()
    monkeypatch.setattr(services_common, "send_task", broker.send)
    monkeypatch.setattr(hpo_services_common, "send_task", broker.send)
    return broker


@pytest.fixture(autouse=True)
def close_optuna_connections() -> Iterator[None]:
    """Optuna's pooled connections would keep the test database from being dropped."""
    yield
    storage.storages_close()
