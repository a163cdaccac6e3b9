"""Celery tasks: thin, taking ids; the work and its claiming live in services.py."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from . import services


@shared_task(name=services.ROUND_START_TASK)
def round_start_task(job_id: int, round_number: int) -> None:
    services.round_start(job_id=job_id, round_number=round_number)


@shared_task(name=services.CLIENT_TRAIN_TASK, bind=True)
def client_train_task(self: Any, update_id: int) -> None:
    services.client_train(update_id=update_id, worker=self.request.hostname or "")


@shared_task(name=services.ROUND_FINISH_TASK)
def round_finish_task(round_id: int) -> None:
    services.round_finish(round_id=round_id)
