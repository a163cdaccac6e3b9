"""Reads about liveness: when a job's round last moved, which workers are alive, which jobs are
stalled. The job page, /healthz and the workers' sweep (`services.recovery.work_reclaim`) read
these; nothing here writes.

A worker is alive when its sweep wrote its `WorkerHeartbeat` row recently (the sweep runs on
the worker's own timer and stops when the worker loses its broker), so "no live worker" needs
neither the broker nor a ping, and reads the same from every web process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from .models import ClientUpdate, Job, Round, WorkerHeartbeat
from .queues import CLIENTS_QUEUE, JOBS_QUEUE

ACTIVE_ROUND_STATUSES = (Round.Status.PENDING, Round.Status.TRAINING, Round.Status.AGGREGATING)


def worker_alive_window() -> timedelta:
    """How recent a worker's heartbeat must be for it to count as alive: three sweeps, plus slack."""
    return timedelta(seconds=3 * settings.FLOTILLA_RECLAIM_SECONDS + 5)


def live_workers(*, queue: str | None = None, now: datetime | None = None) -> list[str]:
    """Host names of the workers whose sweep beat recently (consuming `queue`, if given)."""
    since = (now or timezone.now()) - worker_alive_window()
    rows = WorkerHeartbeat.objects.filter(seen_at__gte=since).values_list("hostname", "queues")
    return sorted(name for name, queues in rows if queue is None or queue in (queues or []))


def queue_for(round_: Round) -> str:
    """The queue whose worker the round waits for."""
    return CLIENTS_QUEUE if round_.status == Round.Status.TRAINING else JOBS_QUEUE


def active_round(job: Job) -> Round | None:
    return job.rounds.filter(status__in=ACTIVE_ROUND_STATUSES).order_by("-number").first()


def round_progress_at(round_: Round) -> datetime:
    """The last time the round moved: created, claimed, a client claimed, finished, or its
    training renewed a lease (a lease's expiry minus its length is its last renewal)."""
    figures: dict[str, Any] = round_.client_updates.aggregate(
        started=Max("started_at"), finished=Max("finished_at"), lease=Max("lease_expires_at")
    )
    moments = [round_.created_at, round_.started_at, figures["started"], figures["finished"]]
    if figures["lease"] is not None:
        moments.append(figures["lease"] - timedelta(seconds=settings.FLOTILLA_LEASE_SECONDS))
    return max(moment for moment in moments if moment is not None)


@dataclass(frozen=True)
class Liveness:
    """What a job page and /healthz say about an active job's progress."""

    job_id: int
    round_number: int
    queue: str
    progress_at: datetime
    stalled: bool
    worker_alive: bool
    retried: list[tuple[int, int]] = field(default_factory=list)  # (client id, claims), claimed twice or more

    @property
    def waiting_for_worker(self) -> bool:
        return self.stalled and not self.worker_alive

    @property
    def idle_seconds(self) -> float:
        return (timezone.now() - self.progress_at).total_seconds()


def job_liveness(job: Job, *, now: datetime | None = None) -> Liveness | None:
    """The active round's progress, whether it is stalled (no move for FLOTILLA_STALL_SECONDS)
    and whether a worker consuming the queue it needs is alive; None for an ended job."""
    if not job.is_active:
        return None
    round_ = active_round(job)
    if round_ is None:
        return None
    now = now or timezone.now()
    progress_at = round_progress_at(round_)
    queue = queue_for(round_)
    retried = list(
        round_.client_updates.filter(attempts__gte=2)
        .order_by("client_id")
        .values_list("client_id", "attempts")
    )
    return Liveness(
        job_id=job.pk,
        round_number=round_.number,
        queue=queue,
        progress_at=progress_at,
        stalled=(now - progress_at).total_seconds() > settings.FLOTILLA_STALL_SECONDS,
        worker_alive=bool(live_workers(queue=queue, now=now)),
        retried=retried,
    )


def stalled_jobs(*, now: datetime | None = None) -> list[Liveness]:
    """Every active job whose round has not moved for FLOTILLA_STALL_SECONDS, oldest id first."""
    now = now or timezone.now()
    found = []
    for job in Job.objects.filter(status__in=Job.ACTIVE_STATUSES).order_by("pk"):
        liveness = job_liveness(job, now=now)
        if liveness is not None and liveness.stalled:
            found.append(liveness)
    return found


def expired_leases(*, now: datetime) -> Any:
    """Running client updates whose lease lapsed (a claim from before leases counts from its start)."""
    from django.db.models import Q

    lease = timedelta(seconds=settings.FLOTILLA_LEASE_SECONDS)
    return ClientUpdate.objects.filter(status=ClientUpdate.Status.RUNNING).filter(
        Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True, started_at__lt=now - lease)
    )
