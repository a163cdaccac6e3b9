"""A round on Celery (tasks.py only calls these):

    job_start ──on commit──▶ round_start (jobs queue): claim the round, configure it,
                               create one ClientUpdate per selected client
            ──on commit──▶ client_train × N (clients queue): train, store the uplink,
                               count in; the client that finishes last hands over to
            ──on commit──▶ round_finish (jobs queue): aggregate, evaluate, store the new
                               global weights and metrics, then the next round_start.

Every step claims its row with a conditional UPDATE, so a duplicate delivery does
nothing, and no step waits for another. A claimed client update holds a lease
(`lease_expires_at`, `attempts`): its training renews it between batches and stops
when the job is cancelled or the lease went to another claim; `recovery.work_reclaim`
takes back expired leases, whichever worker held them. The FL logic is the engine's
(`orchestrator.fl.engine`), the same functions `python -m orchestrator run` uses.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone

from jobspec import JobSpec
from orchestrator import artifacts
from orchestrator.events import publish_round_completed, publish_round_progressed
from orchestrator.fl import engine
from orchestrator.fl.records import CORE_FIGURES, ClientReport, FitIns
from orchestrator.models import ClientUpdate, Job, MetricPoint, Round
from orchestrator.queues import CLIENT_TRAIN_TASK, ROUND_FINISH_TASK, ROUND_START_TASK

from . import _common
from ._common import describe_error, finite_or_none, json_safe
from .jobs import CANCELLED_ERROR, job_finish, job_mark_running, round_cancel_if_idle

logger = logging.getLogger(__name__)

# How often a training client renews its lease and looks for a cancel, at most (seconds);
# at least three renewals fit in one lease.
HEARTBEAT_MAX_INTERVAL_S = 1.0


class TrainingStopped(Exception):
    """Raised between batches: the job was cancelled or has ended; the client stops unrecorded."""


class LeaseLost(Exception):
    """Raised between batches: this claim's lease expired and the update was claimed again."""


def lease_deadline() -> Any:
    return timezone.now() + timedelta(seconds=settings.FLOTILLA_LEASE_SECONDS)


class LeaseHeartbeat:
    """The engine's `on_batch` for one claim: renews the lease at most every
    `HEARTBEAT_MAX_INTERVAL_S` (and at least three times a lease), writing how far training got
    and telling the job's page (`job.round_progressed`), and stops training with
    `TrainingStopped` once the job is no longer running, or `LeaseLost` once another claim
    took the update. A database hiccup is logged and training goes on (the lease may lapse)."""

    def __init__(self, *, update_id: int, worker: str, attempt: int) -> None:
        self.update_id, self.worker, self.attempt = update_id, worker, attempt
        self.interval = min(settings.FLOTILLA_LEASE_SECONDS / 3, HEARTBEAT_MAX_INTERVAL_S)
        self.next_at = 0.0  # the first batch renews at once: loading before it may have been slow
        self.beats = 0
        self.job_id: int | None = None
        self.round_number = 0

    def _mine(self) -> Any:
        return ClientUpdate.objects.filter(
            pk=self.update_id, status=ClientUpdate.Status.RUNNING, worker=self.worker, attempts=self.attempt
        )

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now < self.next_at:
            return
        self.next_at = now + self.interval
        try:
            renewed = (
                self._mine()
                .filter(round__job__status=Job.Status.RUNNING)
                .update(lease_expires_at=lease_deadline(), progress=done / max(total, 1))
            )
            if renewed:
                self.beats += 1
                if self.beats == 1:
                    return  # the first batch: a client done within a second needs no progress event
                if self.job_id is None:
                    self.job_id, self.round_number = (
                        ClientUpdate.objects.filter(pk=self.update_id)
                        .values_list("round__job_id", "round__number")
                        .get()
                    )
                publish_round_progressed(self.job_id, self.round_number)
                return
            job_status = self._mine().values_list("round__job__status", flat=True).first()
        except DatabaseError:
            logger.warning("client update %s: could not renew its lease", self.update_id, exc_info=True)
            return
        if job_status is None:
            raise LeaseLost(f"client update {self.update_id} was claimed again")
        raise TrainingStopped(f"the job is {job_status}")


def _send_client_tasks(update_ids: list[int]) -> None:
    for update_id in update_ids:
        _common.send_task(CLIENT_TRAIN_TASK, update_id)


def round_fail(round_id: int, job_id: int, *, from_status: str, error: str) -> None:
    """Fail the round and its job, unless another delivery already moved the round on."""
    with transaction.atomic():
        if Round.objects.filter(pk=round_id, status=from_status).update(status=Round.Status.FAILED):
            job_finish(job_id=job_id, status=Job.Status.FAILED, error=error)


def round_start(*, job_id: int, round_number: int) -> None:
    """Claim a pending round, let the strategy configure it, and fan the clients out."""
    round_ = Round.objects.select_related("job").filter(job_id=job_id, number=round_number).first()
    if round_ is None or round_.status != Round.Status.PENDING:
        return  # the job was deleted, or another delivery of this task got here first
    job = round_.job
    if job.status == Job.Status.CANCELLING:
        with transaction.atomic():
            if Round.objects.filter(pk=round_.pk, status=Round.Status.PENDING).update(
                status=Round.Status.CANCELLED
            ):
                job_finish(job_id=job_id, status=Job.Status.CANCELLED)
        return
    if job.status not in (Job.Status.QUEUED, Job.Status.RUNNING):
        return
    spec = JobSpec.model_validate(job.spec)
    try:
        key = job.storage_key
        if round_number == 1 and not artifacts.weights_path(key, 0).exists():
            weights, state = engine.job_initialize(spec)
            artifacts.weights_save(key, 0, weights, {"job": job_id, "round": 0})
            artifacts.server_state_save(key, 0, state)
        state = artifacts.server_state_load(key, round_number - 1)
        instructions = engine.round_configure(spec, round_number, state)
        if not instructions:
            raise ValueError(f"the '{spec.selection}' selection chose no client for round {round_number}")
        artifacts.configured_state_save(key, round_number, state)
    except Exception as exc:
        logger.exception("job %s round %s could not start", job_id, round_number)
        round_fail(round_.pk, job_id, from_status=Round.Status.PENDING, error=describe_error(exc))
        return

    with transaction.atomic():
        claimed = Round.objects.filter(pk=round_.pk, status=Round.Status.PENDING).update(
            status=Round.Status.TRAINING,
            started_at=timezone.now(),
            selected=[ins.client_id for ins in instructions],
            expected_clients=len(instructions),
        )
        if not claimed:
            return
        job_mark_running(job_id=job_id)
        updates = ClientUpdate.objects.bulk_create(
            ClientUpdate(round_id=round_.pk, client_id=ins.client_id, config=json_safe(ins.config))
            for ins in instructions
        )
        update_ids = [update.pk for update in updates]
        transaction.on_commit(lambda: _send_client_tasks(update_ids))


def client_train(*, update_id: int, worker: str = "") -> None:
    """Train one selected client through the engine and count it in; the last one hands over."""
    claimable = ClientUpdate.objects.filter(
        pk=update_id,
        status=ClientUpdate.Status.QUEUED,
        round__status=Round.Status.TRAINING,
        round__job__status=Job.Status.RUNNING,
    )
    spec_json = claimable.values_list("round__job__spec", flat=True).first()
    if spec_json is None:
        return  # claimed already, or its round or job moved on
    try:
        # A process's first client of a job builds the job's runtime (data set, partitions, model),
        # which may take longer than a lease and has no batches to renew it: do it before claiming.
        engine.runtime_for(JobSpec.model_validate(spec_json))
    except Exception:
        logger.debug("client update %s: warming up failed; training reports why", update_id, exc_info=True)
    claimed = claimable.update(
        status=ClientUpdate.Status.RUNNING,
        worker=worker,
        started_at=timezone.now(),
        attempts=F("attempts") + 1,
        lease_expires_at=lease_deadline(),
        progress=0.0,
    )
    if not claimed:
        return
    update = ClientUpdate.objects.select_related("round__job").get(pk=update_id)
    round_, job = update.round, update.round.job
    spec = JobSpec.model_validate(job.spec)
    heartbeat = LeaseHeartbeat(update_id=update_id, worker=worker, attempt=update.attempts)
    outcome: dict[str, Any]
    try:
        key = job.storage_key
        weights = artifacts.weights_load(key, round_.number - 1)
        state = artifacts.configured_state_load(key, round_.number)
        payload = engine.downlink_message(spec, weights, state, FitIns(update.client_id, update.config))
        client_state = artifacts.client_state_load(key, update.client_id, round_.number)
        uplink, new_client_state, report = engine.client_fit(
            spec, payload, client_state=client_state, on_batch=heartbeat
        )
        artifacts.uplink_save(key, round_.number, update.client_id, uplink)
        artifacts.client_state_save(key, update.client_id, round_.number, new_client_state)
        outcome = {
            "status": ClientUpdate.Status.DONE,
            "num_examples": report.num_examples,
            "train_loss": finite_or_none(report.train_loss),
            "bytes_up": report.bytes_up,
            "bytes_down": report.bytes_down,
            "cpu_s": report.cpu_s,
            "wall_s": report.wall_s,
            "metrics": json_safe(report.metrics),
        }
    except LeaseLost:
        logger.warning(
            "job %s round %s client %s: lease lost, another claim trains it",
            job.pk,
            round_.number,
            update.client_id,
        )
        return
    except TrainingStopped as stopped:
        logger.info("job %s round %s client %s stopped: %s", job.pk, round_.number, update.client_id, stopped)
        client_update_stop(update_id=update_id, round_id=round_.pk, worker=worker, attempt=update.attempts)
        return
    except Exception as exc:
        logger.exception("job %s round %s client %s failed", job.pk, round_.number, update.client_id)
        outcome = {"status": ClientUpdate.Status.FAILED, "error": describe_error(exc)}

    client_update_record(
        update_id=update_id,
        round_id=round_.pk,
        claim={"worker": worker, "attempts": update.attempts},
        outcome=outcome,
    )


def client_update_record(
    *, update_id: int, round_id: int, claim: dict[str, Any], outcome: dict[str, Any]
) -> bool:
    """Record a running update's outcome (if `claim` still holds it) and count it in; the last one
    hands over to `round_finish`. False if the claim had moved on (a duplicate or a reclaim)."""
    with transaction.atomic():
        recorded = ClientUpdate.objects.filter(
            pk=update_id, status=ClientUpdate.Status.RUNNING, **claim
        ).update(finished_at=timezone.now(), lease_expires_at=None, **outcome)
        if not recorded:
            return False
        Round.objects.filter(pk=round_id).update(finished_clients=F("finished_clients") + 1)
        job_id, number = Round.objects.filter(pk=round_id).values_list("job_id", "number").get()
        publish_round_progressed(job_id, number)
        last = Round.objects.filter(
            pk=round_id, status=Round.Status.TRAINING, finished_clients=F("expected_clients")
        ).update(status=Round.Status.AGGREGATING)
        if last:
            transaction.on_commit(lambda: _common.send_task(ROUND_FINISH_TASK, round_id))
    return True


def client_update_stop(*, update_id: int, round_id: int, worker: str, attempt: int) -> None:
    """A client stopped because its job is no longer running: no result is kept, and the round
    is cancelled once no other client of it still trains."""
    ClientUpdate.objects.filter(
        pk=update_id, status=ClientUpdate.Status.RUNNING, worker=worker, attempts=attempt
    ).update(
        status=ClientUpdate.Status.FAILED,
        error=CANCELLED_ERROR,
        finished_at=timezone.now(),
        lease_expires_at=None,
    )
    round_cancel_if_idle(round_id=round_id)


def _client_report(update: ClientUpdate) -> ClientReport:
    return ClientReport(
        client_id=update.client_id,
        num_examples=update.num_examples,
        train_loss=update.train_loss if update.train_loss is not None else math.nan,
        bytes_up=update.bytes_up,
        bytes_down=update.bytes_down,
        cpu_s=update.cpu_s,
        wall_s=update.wall_s,
        metrics=update.metrics,
    )


def _too_many_failures(failed: int, selected: int) -> bool:
    return failed == selected or failed > settings.FLOTILLA_MAX_CLIENT_FAILURE_FRACTION * selected


def round_finish(*, round_id: int) -> None:
    """Aggregate a round whose clients all reported, record it, and start the next one."""
    round_ = Round.objects.select_related("job").filter(pk=round_id, status=Round.Status.AGGREGATING).first()
    if round_ is None:
        return
    job, number = round_.job, round_.number
    updates = list(round_.client_updates.order_by("client_id"))
    done = [u for u in updates if u.status == ClientUpdate.Status.DONE]
    failed = [u for u in updates if u.status == ClientUpdate.Status.FAILED]
    if _too_many_failures(len(failed), len(updates)):
        first = failed[0]
        tolerance = round(100 * settings.FLOTILLA_MAX_CLIENT_FAILURE_FRACTION)
        # A lost client's error reads "failed 3 times: worker lost while training".
        joiner = " " if first.error.startswith("failed ") else ": "
        error = (
            f"round {number}: {len(failed)} of {len(updates)} clients failed (at most {tolerance}% may fail). "
            f"Client {first.client_id}{joiner}{first.error}"
        )
        round_fail(round_.pk, job.pk, from_status=Round.Status.AGGREGATING, error=error)
        return

    spec = JobSpec.model_validate(job.spec)
    try:
        key = job.storage_key
        weights = artifacts.weights_load(key, number - 1)
        state = artifacts.configured_state_load(key, number)
        uplinks = [artifacts.uplink_load(key, number, u.client_id) for u in done]
        new_weights, new_state, aggregate_metrics = engine.round_aggregate(
            spec, number, weights, state, uplinks
        )
        accuracy, loss = engine.evaluate_weights(spec, new_weights)
        assert round_.started_at is not None
        summary = engine.summarize_round(
            spec,
            number,
            instructions=[FitIns(u.client_id, u.config) for u in updates],
            reports=[_client_report(u) for u in done],
            failures=[{"client_id": u.client_id, "error": u.error} for u in failed],
            aggregate_metrics=aggregate_metrics,
            accuracy=accuracy,
            loss=loss,
            wall_s=(timezone.now() - round_.started_at).total_seconds(),
        )
        artifacts.weights_save(key, number, new_weights, {"job": job.pk, "round": number, "spec": job.spec})
        artifacts.server_state_save(key, number, new_state)
    except Exception as exc:
        logger.exception("job %s round %s could not be aggregated", job.pk, number)
        round_fail(round_.pk, job.pk, from_status=Round.Status.AGGREGATING, error=describe_error(exc))
        return
    _round_record(round_, summary)


def _metric_values(summary: Any) -> dict[str, float]:
    """The round's numeric figures, one MetricPoint each (the chart and download series)."""
    values: dict[str, Any] = {name: getattr(summary, name) for name in CORE_FIGURES}
    for name, value in summary.metrics.items():
        if isinstance(value, int | float) and not isinstance(value, bool) and name not in values:
            values[name] = value
    return {name: float(v) for name, v in values.items() if math.isfinite(float(v))}


def _round_record(round_: Round, summary: Any) -> None:
    job_id, number = round_.job_id, round_.number
    with transaction.atomic():
        completed = Round.objects.filter(pk=round_.pk, status=Round.Status.AGGREGATING).update(
            status=Round.Status.COMPLETED,
            accuracy=finite_or_none(summary.accuracy),
            loss=finite_or_none(summary.loss),
            bytes_up=summary.bytes_up,
            bytes_down=summary.bytes_down,
            client_cpu_s=summary.client_cpu_s,
            wall_s=summary.wall_s,
            failures=json_safe(summary.failures),
            metrics=json_safe(summary.metrics),
            completed_at=timezone.now(),
        )
        if not completed:
            return
        MetricPoint.objects.bulk_create(
            [
                MetricPoint(job_id=job_id, round=number, name=name, value=value)
                for name, value in _metric_values(summary).items()
            ],
            ignore_conflicts=True,
        )
        job = Job.objects.select_for_update().get(pk=job_id)
        job.current_round = number
        job.bytes_up_total += summary.bytes_up
        job.bytes_down_total += summary.bytes_down
        job.client_cpu_s_total += summary.client_cpu_s
        job.wall_s_total += summary.wall_s
        job.final_accuracy = finite_or_none(summary.accuracy)
        job.final_loss = finite_or_none(summary.loss)
        if job.final_accuracy is not None and (
            job.best_accuracy is None or job.final_accuracy > job.best_accuracy
        ):
            job.best_accuracy, job.best_round = job.final_accuracy, number
        job.save()
        publish_round_completed(job_id, number)
        if job.status == Job.Status.CANCELLING:
            job_finish(job_id=job_id, status=Job.Status.CANCELLED)
        elif number >= job.rounds_total:
            job_finish(job_id=job_id, status=Job.Status.SUCCEEDED)
        elif job.status == Job.Status.RUNNING:
            Round.objects.create(job_id=job_id, number=number + 1)
            transaction.on_commit(lambda: _common.send_task(ROUND_START_TASK, job_id, number + 1))
        transaction.on_commit(lambda: artifacts.round_scratch_delete(job.storage_key, number))
