"""HPO's Celery task names and how they are sent (all on the `hpo` queue)."""

from __future__ import annotations

STUDY_TICK_TASK = "orchestrator.hpo.study_tick"
SUGGESTIONS_TASK = "orchestrator.hpo.suggestions"
HPO_QUEUE = "hpo"


def send_hpo_task(name: str, *args: int, countdown: float | None = None) -> None:
    from webui.celery import app

    app.send_task(name, args=list(args), queue=HPO_QUEUE, countdown=countdown)
