"""Notifications that something changed; the database stays the truth.

Two audiences:
- browsers: a Channels group per job (`job.<id>`) gets `job.round_completed`,
  `job.round_progressed` (a client of the running round reported, or its training got
  further) and `job.status_changed`; the consumer re-reads the rows and renders them;
- other parts of Flotilla (HPO trial bookkeeping, pruning): the Django signals
  `round_completed(job_id=, round_number=)` and `job_finished(job_id=, status=)`.

Both are sent only after the transaction that made the change has committed: the publish
functions defer themselves with `transaction.on_commit`, so services call them inside it.
The messages are typed (`RoundCompleted`, `RoundProgressed`, `StatusChanged`); `type` names the consumer method.
"""

from __future__ import annotations

import logging
from typing import Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

round_completed = Signal()  # kwargs: job_id, round_number
job_finished = Signal()  # kwargs: job_id, status

ROUND_COMPLETED: Literal["job.round_completed"] = "job.round_completed"
ROUND_PROGRESSED: Literal["job.round_progressed"] = "job.round_progressed"
STATUS_CHANGED: Literal["job.status_changed"] = "job.status_changed"


class RoundCompleted(TypedDict):
    """A round's figures are in the database (the consumer method is `job_round_completed`)."""

    type: Literal["job.round_completed"]
    job_id: int
    round: int


class RoundProgressed(TypedDict):
    """The running round moved on: a client reported, or a training client got further (the
    consumer method is `job_round_progressed`)."""

    type: Literal["job.round_progressed"]
    job_id: int
    round: int


class StatusChanged(TypedDict):
    """A job's status changed (the consumer method is `job_status_changed`)."""

    type: Literal["job.status_changed"]
    job_id: int
    status: str


def job_group(job_id: int) -> str:
    return f"job.{job_id}"


def _group_send(job_id: int, message: RoundCompleted | RoundProgressed | StatusChanged) -> None:
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
    """Announce the round once the caller's transaction commits (at once outside one)."""

    def send() -> None:
        _group_send(job_id, RoundCompleted(type=ROUND_COMPLETED, job_id=job_id, round=round_number))
        round_completed.send(sender=None, job_id=job_id, round_number=round_number)

    transaction.on_commit(send)


def publish_round_progressed(job_id: int, round_number: int) -> None:
    """Announce the running round's progress once the caller's transaction commits (browsers only)."""
    transaction.on_commit(
        lambda: _group_send(job_id, RoundProgressed(type=ROUND_PROGRESSED, job_id=job_id, round=round_number))
    )


def publish_status_changed(job_id: int, status: str, *, finished: bool) -> None:
    """Announce the status once the caller's transaction commits (at once outside one)."""

    def send() -> None:
        _group_send(job_id, StatusChanged(type=STATUS_CHANGED, job_id=job_id, status=status))
        if finished:
            job_finished.send(sender=None, job_id=job_id, status=status)

    transaction.on_commit(send)
