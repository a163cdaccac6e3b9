"""HPO's Celery tasks (queue `hpo`): thin, taking ids; the work lives in services.py."""

from __future__ import annotations

from celery import shared_task

from . import services
from .dispatch import STUDY_TICK_TASK, SUGGESTIONS_TASK


@shared_task(name=STUDY_TICK_TASK)
def study_tick_task(study_id: int) -> None:
    services.study_tick(study_id=study_id)


@shared_task(name=SUGGESTIONS_TASK)
def suggestions_task(job_id: int) -> None:
    services.job_suggestions_create(job_id=job_id)
