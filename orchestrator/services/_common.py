"""What the services modules share: the one way they send a task, and how errors and
metrics are stored.

Tasks are sent by name (`queues.py`), never through `webui` or the task objects, so
neither the services nor the tasks that call them import each other in a loop.
Every module calls `_common.send_task` through this module, so a test replaces it in
one place.
"""

from __future__ import annotations

import math
from typing import Any

from orchestrator.fl.data import DatasetUnavailable
from orchestrator.fl.partition import PartitionError
from orchestrator.fl.text import ModelUnavailable
from orchestrator.queues import task_send

# Errors whose message already tells the user what to change.
USER_ERRORS = (DatasetUnavailable, ModelUnavailable, PartitionError, ValueError, FileNotFoundError)


def send_task(name: str, *args: Any) -> None:
    task_send(name, *args)


def describe_error(exc: BaseException) -> str:
    """Words a user can act on; unexpected errors say where the details are."""
    if isinstance(exc, USER_ERRORS):
        return str(exc)
    return f"internal error ({type(exc).__name__}: {exc}); the worker log has the details"


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def json_safe(value: Any) -> Any:
    """Metrics as JSON the database and browsers accept (NaN and infinities become null)."""
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
