"""Getting work going again: when a worker starts (`jobs_resume`, from
`tasks.resume_interrupted_jobs`), and every few seconds on every worker (`work_reclaim`, from
the worker's timer: `webui.celery.ReclaimStep`): expired leases, lost messages, cancelling
jobs, stalled rounds."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orchestrator import artifacts, liveness
from orchestrator.models import ClientUpdate, Job, Round, WorkerHeartbeat
from orchestrator.queues import CLIENT_TRAIN_TASK, ROUND_FINISH_TASK, ROUND_START_TASK

from . import _common, jobs, rounds

# Finished jobs whose leftover round scratch the sweep looks for.
SCRATCH_SWEEP_WINDOW = timedelta(hours=1)


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
            stale.update(status=ClientUpdate.Status.QUEUED, lease_expires_at=None)
            for pk in round_.client_updates.filter(status=ClientUpdate.Status.QUEUED).values_list(
                "pk", flat=True
            ):
                _common.send_task(CLIENT_TRAIN_TASK, pk)
                sent += 1
    return sent


# --- the workers' sweep ----------------------------------------------------------------------


LOST_ERROR = "worker lost while training"


def worker_beat(*, worker: str, queues: list[str], now: datetime) -> None:
    """Note that `worker` is alive and consumes `queues` (`liveness.live_workers` reads it)."""
    WorkerHeartbeat.objects.update_or_create(hostname=worker, defaults={"queues": queues, "seen_at": now})


def _lease_reclaim(update: ClientUpdate, *, job_status: str, now: datetime) -> str:
    """Take back one expired lease; returns what became of it: requeued, failed, stopped."""
    claim = {"attempts": update.attempts, "lease_expires_at": update.lease_expires_at}
    if job_status != Job.Status.RUNNING:
        rounds.client_update_stop(
            update_id=update.pk, round_id=update.round_id, worker=update.worker, attempt=update.attempts
        )
        return "stopped"
    if update.attempts >= settings.FLOTILLA_CLIENT_MAX_ATTEMPTS:
        rounds.client_update_record(
            update_id=update.pk,
            round_id=update.round_id,
            claim=claim,
            outcome={
                "status": ClientUpdate.Status.FAILED,
                "error": f"failed {update.attempts} times: {LOST_ERROR}",
            },
        )
        return "failed"
    with transaction.atomic():
        if ClientUpdate.objects.filter(pk=update.pk, status=ClientUpdate.Status.RUNNING, **claim).update(
            status=ClientUpdate.Status.QUEUED, lease_expires_at=None
        ):
            transaction.on_commit(lambda: _common.send_task(CLIENT_TRAIN_TASK, update.pk))
            return "requeued"
    return "raced"


def _round_resend(round_: Round) -> int:
    """Send a round's waiting task(s) again; returns how many were sent."""
    Round.objects.filter(pk=round_.pk).update(resent_at=timezone.now())
    if round_.status == Round.Status.PENDING:
        _common.send_task(ROUND_START_TASK, round_.job_id, round_.number)
        return 1
    if round_.status == Round.Status.AGGREGATING:
        _common.send_task(ROUND_FINISH_TASK, round_.pk)
        return 1
    queued = list(
        round_.client_updates.filter(status=ClientUpdate.Status.QUEUED).values_list("pk", flat=True)
    )
    for pk in queued:
        _common.send_task(CLIENT_TRAIN_TASK, pk)
    return len(queued)


def _stall_error(round_: Round, progress_at: datetime, now: datetime) -> str:
    minutes = max(1, round((now - progress_at).total_seconds() / 60))
    queue = liveness.queue_for(round_)
    workers = liveness.live_workers(queue=queue, now=now)
    why = (
        f"no live worker consumes the '{queue}' queue"
        if not workers
        else f"workers {', '.join(workers)} are alive but the round did not move"
    )
    return (
        f"round {round_.number} made no progress for {minutes} minutes "
        f"(since {timezone.localtime(progress_at):%Y-%m-%d %H:%M}): {why}"
    )


def work_reclaim(
    *, worker: str = "", queues: list[str] | None = None, resend_all: bool = False
) -> dict[str, int]:
    """One sweep, run by every worker every FLOTILLA_RECLAIM_SECONDS (and with `resend_all` after
    each broker (re)connection, when queued messages may have been lost). Returns counts.

    - notes the worker's heartbeat;
    - expired leases (whoever held them): re-queued and sent again, or, after
      FLOTILLA_CLIENT_MAX_ATTEMPTS claims, recorded as the client's failure (the round's
      tolerance decides the rest); a cancelling job's are stopped;
    - rounds of active jobs that have not moved for a lease (or all, with `resend_all`): their
      waiting task(s) are sent again (every task claims conditionally, so a duplicate is a no-op);
    - cancelling jobs whose round has no running client become cancelled;
    - rounds stalled past FLOTILLA_STALL_FAIL_SECONDS fail their job with the reason;
    - recently finished jobs lose any round scratch a killed process left behind.
    """
    now = timezone.now()
    counts = {"requeued": 0, "failed": 0, "stopped": 0, "resent": 0, "cancelled": 0, "stall_failed": 0}
    if worker:
        worker_beat(worker=worker, queues=list(queues or []), now=now)

    for update in liveness.expired_leases(now=now).select_related("round__job"):
        outcome = _lease_reclaim(update, job_status=update.round.job.status, now=now)
        if outcome in counts:
            counts[outcome] += 1

    lease = timedelta(seconds=settings.FLOTILLA_LEASE_SECONDS)
    stall_fail = settings.FLOTILLA_STALL_FAIL_SECONDS
    rounds_ = Round.objects.filter(
        job__status__in=Job.ACTIVE_STATUSES, status__in=liveness.ACTIVE_ROUND_STATUSES
    ).select_related("job")
    active_jobs: set[int] = set()
    for round_ in rounds_:
        active_jobs.add(round_.job_id)
        if round_.job.status == Job.Status.CANCELLING and round_.status != Round.Status.AGGREGATING:
            counts["cancelled"] += jobs.round_cancel_if_idle(round_id=round_.pk)
            continue
        progress_at = liveness.round_progress_at(round_)
        if stall_fail > 0 and (now - progress_at).total_seconds() > stall_fail:
            rounds.round_fail(
                round_.pk,
                round_.job_id,
                from_status=round_.status,
                error=_stall_error(round_, progress_at, now),
            )
            counts["stall_failed"] += 1
            continue
        moved_at = max(progress_at, round_.resent_at or progress_at)
        if resend_all or now - moved_at > lease:
            counts["resent"] += _round_resend(round_)

    # A cancelling job with no active round left (its last round completed as it was cancelled).
    for job_id in (
        Job.objects.filter(status=Job.Status.CANCELLING)
        .exclude(pk__in=active_jobs)
        .values_list("pk", flat=True)
    ):
        with transaction.atomic():
            if not Round.objects.filter(job_id=job_id, status__in=liveness.ACTIVE_ROUND_STATUSES).exists():
                counts["cancelled"] += jobs.job_finish(job_id=job_id, status=Job.Status.CANCELLED)

    for job in Job.objects.filter(
        status__in=Job.FINISHED_STATUSES, finished_at__gte=now - SCRATCH_SWEEP_WINDOW
    ).only("pk", "created_at"):
        if artifacts.job_scratch_exists(job.storage_key):
            artifacts.job_scratch_delete(job.storage_key)
    return counts


def jobs_stalled_fail() -> int:
    """Fail the jobs stalled past FLOTILLA_STALL_FAIL_SECONDS (what the sweep does, for when no
    worker is alive to sweep: /healthz calls it). Returns how many failed."""
    if settings.FLOTILLA_STALL_FAIL_SECONDS <= 0:
        return 0
    now = timezone.now()
    failed = 0
    for stall in liveness.stalled_jobs(now=now):
        if (now - stall.progress_at).total_seconds() <= settings.FLOTILLA_STALL_FAIL_SECONDS:
            continue
        round_ = Round.objects.filter(job_id=stall.job_id, number=stall.round_number).first()
        if round_ is not None and round_.status in liveness.ACTIVE_ROUND_STATUSES:
            rounds.round_fail(
                round_.pk,
                round_.job_id,
                from_status=round_.status,
                error=_stall_error(round_, stall.progress_at, now),
            )
            failed += 1
    return failed
