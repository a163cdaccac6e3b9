"""Notifications that something changed; the database stays the truth.

Two audiences:
- browsers: a Channels group per job (`job.<id>`) gets `job.round_completed` and
  `job.status_changed`; the consumer re-reads the rows and renders them;
- other parts of Flotilla (HPO trial bookkeeping, pruning): the Django signals
  `round_completed(job_id=, round_number=)` and `job_finished(job_id=, status=)`.

Both are sent only after the transaction that made the change has committed.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.dispatch import Signal

logger = logging.getLogger(__name__)

round_completed = Signal()  # kwargs: job_id, round_number
job_finished = Signal()  # kwargs: job_id, status

ROUND_COMPLETED = "job.round_completed"
STATUS_CHANGED = "job.status_changed"


def job_group(job_id: int) -> str:
    return f"job.{job_id}"


def _group_send(job_id: int, message: dict[str, object]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(job_group(job_id), message)
    except Exception:
        # A browser that misses a notification catches up from the snapshot on reconnect;
        # the job itself must not fail because Redis hiccuped.
        logger.exception("could not notify job %s watchers", job_id)


def publish_round_completed(job_id: int, round_number: int) -> None:
    _group_send(job_id, {"type": ROUND_COMPLETED, "job_id": job_id, "round": round_number})
    round_completed.send(sender=None, job_id=job_id, round_number=round_number)


def publish_status_changed(job_id: int, status: str, *, finished: bool) -> None:
    _group_send(job_id, {"type": STATUS_CHANGED, "job_id": job_id, "status": status})
    if finished:
        job_finished.send(sender=None, job_id=job_id, status=status)
