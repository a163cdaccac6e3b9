"""Picking running jobs up again when a worker starts (`tasks.resume_interrupted_jobs`)."""

from __future__ import annotations

from orchestrator.models import ClientUpdate, Job, Round
from orchestrator.queues import CLIENT_TRAIN_TASK, ROUND_FINISH_TASK, ROUND_START_TASK

from . import _common


def jobs_resume(*, worker: str | None = None) -> int:
    """Re-deliver the unfinished work of running jobs; returns how many tasks were sent.

    Called when a worker starts: client updates that worker had claimed (or, with
    `worker=None`, any claimed ones) are reset and sent again. Every step claims its
    row conditionally, so work that is in fact still queued or running elsewhere is
    not counted twice; at worst a client trains twice and one result is kept.
    """
    sent = 0
    rounds = Round.objects.filter(
        job__status__in=(Job.Status.QUEUED, Job.Status.RUNNING, Job.Status.CANCELLING),
        status__in=(Round.Status.PENDING, Round.Status.TRAINING, Round.Status.AGGREGATING),
    )
    for round_ in rounds:
        if round_.status == Round.Status.PENDING:
            _common.send_task(ROUND_START_TASK, round_.job_id, round_.number)
            sent += 1
        elif round_.status == Round.Status.AGGREGATING:
            _common.send_task(ROUND_FINISH_TASK, round_.pk)
            sent += 1
        else:
            stale = round_.client_updates.filter(status=ClientUpdate.Status.RUNNING)
            if worker is not None:
                stale = stale.filter(worker=worker)
            stale.update(status=ClientUpdate.Status.QUEUED)
            for pk in round_.client_updates.filter(status=ClientUpdate.Status.QUEUED).values_list(
                "pk", flat=True
            ):
                _common.send_task(CLIENT_TRAIN_TASK, pk)
                sent += 1
    return sent
