"""Every Celery task's name and queue, and the one way services send them.

The names are the wire contract (queued messages name their task), so they never
change. `orchestrator.tasks` declares each task with its queue from here, the
Celery app's routes are derived from here, and services send through
`task_send`, which knows no task object, so no service imports the tasks (which
import the services).
"""

from __future__ import annotations

from celery import current_app

JOBS_QUEUE = "jobs"
CLIENTS_QUEUE = "clients"
HPO_QUEUE = "hpo"

ROUND_START_TASK = "orchestrator.round_start"
CLIENT_TRAIN_TASK = "orchestrator.client_train"
ROUND_FINISH_TASK = "orchestrator.round_finish"
STUDY_TICK_TASK = "orchestrator.hpo.study_tick"
SUGGESTIONS_TASK = "orchestrator.hpo.suggestions"

TASK_QUEUES: dict[str, str] = {
    ROUND_START_TASK: JOBS_QUEUE,
    ROUND_FINISH_TASK: JOBS_QUEUE,
    CLIENT_TRAIN_TASK: CLIENTS_QUEUE,
    STUDY_TICK_TASK: HPO_QUEUE,
    SUGGESTIONS_TASK: HPO_QUEUE,
}
TASK_ROUTES: dict[str, dict[str, str]] = {name: {"queue": queue} for name, queue in TASK_QUEUES.items()}


def task_send(name: str, *args: int, countdown: float | None = None) -> None:
    """Send a task by name on its queue, through the project's Celery app (`webui.celery`)."""
    current_app.send_task(name, args=list(args), queue=TASK_QUEUES[name], countdown=countdown)
