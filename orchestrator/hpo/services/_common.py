"""What the HPO services modules share: the one way they send a task (by name, `queues.py`).

Every module calls `_common.send_task` through this module, so a test replaces it in one place.
"""

from __future__ import annotations

from orchestrator.queues import task_send


def send_task(name: str, *args: int, countdown: float | None = None) -> None:
    task_send(name, *args, countdown=countdown)
