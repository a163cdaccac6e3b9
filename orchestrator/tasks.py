"""Every Celery task, named from `queues.py` (whose table also routes each to its queue,
through the app's `task_routes`; Celery 5.7 deprecates a `queue` task attribute): thin,
taking ids; the work and its claiming live in the services.

Also connects the worker's start to `jobs_resume`, so work a stopped worker left
mid-round is delivered again (duplicates are no-ops).
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import worker_ready

from .hpo.services import studies, suggestions
from .queues import (
    CLIENT_TRAIN_TASK,
    ROUND_FINISH_TASK,
    ROUND_START_TASK,
    STUDY_TICK_TASK,
    SUGGESTIONS_TASK,
)
from .services import recovery, rounds


@shared_task(name=ROUND_START_TASK)
def round_start_task(job_id: int, round_number: int) -> None:
    rounds.round_start(job_id=job_id, round_number=round_number)


@shared_task(name=CLIENT_TRAIN_TASK, bind=True)
def client_train_task(self: Any, update_id: int) -> None:
    rounds.client_train(update_id=update_id, worker=self.request.hostname or "")


@shared_task(name=ROUND_FINISH_TASK)
def round_finish_task(round_id: int) -> None:
    rounds.round_finish(round_id=round_id)


@shared_task(name=STUDY_TICK_TASK)
def study_tick_task(study_id: int) -> None:
    studies.study_tick(study_id=study_id)


@shared_task(name=SUGGESTIONS_TASK)
def suggestions_task(job_id: int) -> None:
    suggestions.job_suggestions_create(job_id=job_id)


@worker_ready.connect(dispatch_uid="orchestrator.worker_ready")
def resume_interrupted_jobs(sender: Any = None, **kwargs: Any) -> None:
    """Re-deliver the work this worker left mid-round when it stopped (duplicates are no-ops)."""
    recovery.jobs_resume(worker=getattr(sender, "hostname", None))
