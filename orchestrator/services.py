"""Everything that changes a job, as keyword-only `<entity>_<action>` functions.

A round on Celery (tasks.py only calls these):

    job_start ──on commit──▶ round_start (jobs queue): claim the round, configure it,
                               create one ClientUpdate per selected client
            ──on commit──▶ client_train × N (clients queue): train, store the uplink,
                               count in; the client that finishes last hands over to
            ──on commit──▶ round_finish (jobs queue): aggregate, evaluate, store the new
                               global weights and metrics, then the next round_start.

Every step claims its row with a conditional UPDATE, so a duplicate delivery does
nothing, and no step waits for another. The FL logic is the engine's
(`orchestrator.fl.engine`), the same functions `python -m orchestrator run` uses.

Tasks are sent by name (`queues.py`), never through `webui` or the task objects, so
neither this module nor the tasks that call it import each other in a loop. Which of
a job or an HPO study a spec becomes is `submit.job_submit`'s choice, above this
module and HPO.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from pydantic import ValidationError
from rest_framework.authtoken.models import Token

from jobspec import JobSpec, spec_errors

from . import artifacts
from .events import publish_round_completed, publish_status_changed
from .fl import engine
from .fl.csv_models import CsvModelMismatch, csv_model_resolve
from .fl.data import DatasetUnavailable
from .fl.partition import PartitionError
from .fl.records import CORE_FIGURES, ClientReport, FitIns
from .fl.text import ModelUnavailable, hf_model_location_error
from .limits import SpecRejected, admission_errors, dataset_path_resolve, user_data_dir
from .models import ClientUpdate, Job, MetricPoint, Round
from .queues import CLIENT_TRAIN_TASK, ROUND_FINISH_TASK, ROUND_START_TASK, task_send

logger = logging.getLogger(__name__)

# Errors whose message already tells the user what to change.
USER_ERRORS = (DatasetUnavailable, ModelUnavailable, PartitionError, ValueError, FileNotFoundError)


class JobBusy(Exception):
    """The job is still queued or running; cancel it first."""


def _send_task(name: str, *args: Any) -> None:
    task_send(name, *args)


def _send_client_tasks(update_ids: list[int]) -> None:
    for update_id in update_ids:
        _send_task(CLIENT_TRAIN_TASK, update_id)


def describe_error(exc: BaseException) -> str:
    """Words a user can act on; unexpected errors say where the details are."""
    if isinstance(exc, USER_ERRORS):
        return str(exc)
    return f"internal error ({type(exc).__name__}: {exc}); the worker log has the details"


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def json_safe(value: Any) -> Any:
    """Metrics as JSON the database and browsers accept (NaN and infinities become null)."""
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


# --- jobs ------------------------------------------------------------------------------


def job_admit(*, owner: User, spec: JobSpec | dict[str, Any], prompt: str = "", admit: bool = True) -> Job:
    """Validate, admit and save a job, not started yet (`job_start`, or HPO's `study_create`).

    Raises SpecRejected (errors name the field) for an invalid spec, a `dataset_path`
    outside the user's data space, or a spec over this deployment's limits. `admit=False`
    skips the per-user limits, for jobs the platform starts itself (HPO trials). Call it
    in the transaction that starts the job, so the owner's row stays locked until then.
    """
    raw = spec.model_dump(mode="json") if isinstance(spec, JobSpec) else dict(spec)
    if raw.get("dataset_path"):
        raw["dataset_path"] = dataset_path_resolve(str(raw["dataset_path"]), owner_id=owner.pk)
    try:
        resolved = JobSpec.model_validate(csv_model_resolve(raw))
    except CsvModelMismatch as exc:
        raise SpecRejected([{"field": "model", "message": str(exc)}]) from exc
    except ValidationError as exc:
        raise SpecRejected(spec_errors(exc)) from exc
    model_error = hf_model_location_error(resolved.model or "", Path(settings.FLOTILLA_MODEL_DIR))
    if model_error:
        raise SpecRejected([{"field": "model", "message": model_error}])
    with transaction.atomic():
        if admit:
            # Lock the owner's row so two simultaneous submissions cannot both pass the limit.
            User.objects.select_for_update().filter(pk=owner.pk).first()
            active = Job.objects.filter(owner=owner, status__in=Job.ACTIVE_STATUSES).count()
            errors = admission_errors(resolved, active_jobs=active)
            if errors:
                raise SpecRejected(errors)
        return Job.objects.create(
            owner=owner,
            name=resolved.name or "",
            spec=resolved.model_dump(mode="json"),
            prompt=prompt,
            rounds_total=resolved.rounds,
        )


def job_start(*, job: Job) -> None:
    """Give a saved job its pending round 1, and queue it once the row is committed."""
    Round.objects.create(job=job, number=1)
    transaction.on_commit(lambda: _send_task(ROUND_START_TASK, job.pk, 1))


def job_create(*, owner: User, spec: JobSpec | dict[str, Any], prompt: str = "", admit: bool = True) -> Job:
    """Admit, save and start a job that runs its own rounds (see `job_admit` for what is refused
    and `admit`). A search (hpo.enabled) runs a study instead: `submit.job_submit` routes it."""
    with transaction.atomic():
        job = job_admit(owner=owner, spec=spec, prompt=prompt, admit=admit)
        if JobSpec.model_validate(job.spec).hpo.enabled:
            raise ValueError("a spec with hpo.enabled runs a study: submit it with submit.job_submit")
        job_start(job=job)
    return job


def job_cancel(*, job: Job) -> Job:
    """Stop a job after its current round (a queued job stops at once)."""
    with transaction.atomic():
        if Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
            status=Job.Status.CANCELLED, finished_at=timezone.now()
        ):
            Round.objects.filter(job=job, status=Round.Status.PENDING).update(status=Round.Status.CANCELLED)
            publish_status_changed(job.pk, Job.Status.CANCELLED, finished=True)
        elif Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(status=Job.Status.CANCELLING):
            publish_status_changed(job.pk, Job.Status.CANCELLING, finished=False)
    job.refresh_from_db()
    return job


def job_delete(*, job: Job) -> None:
    """Delete a finished job with its rounds, metrics and artifacts."""
    if job.is_active:
        raise JobBusy(f"job {job.pk} is {job.status}: cancel it and wait for it to stop first")
    storage_key = job.storage_key
    job.delete()
    artifacts.job_artifacts_delete(storage_key)


def job_mark_running(*, job_id: int) -> bool:
    """Move a queued job to running (inside the caller's transaction); False if it was not queued."""
    changed = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
        status=Job.Status.RUNNING, started_at=timezone.now()
    )
    if changed:
        publish_status_changed(job_id, Job.Status.RUNNING, finished=False)
    return bool(changed)


def job_finish(
    *, job_id: int, status: str, error: str = "", results: dict[str, float | None] | None = None
) -> bool:
    """Move an active job to a final status (inside the caller's transaction), with its
    error or result figures (`final_accuracy`, ...); False if it had already ended."""
    fields: dict[str, Any] = {"status": status, "finished_at": timezone.now(), **(results or {})}
    if error:
        fields["error"] = error
    changed = Job.objects.filter(pk=job_id, status__in=Job.ACTIVE_STATUSES).update(**fields)
    if changed:
        publish_status_changed(job_id, status, finished=True)
    return bool(changed)


def _round_fail(round_id: int, job_id: int, *, from_status: str, error: str) -> None:
    """Fail the round and its job, unless another delivery already moved the round on."""
    with transaction.atomic():
        if Round.objects.filter(pk=round_id, status=from_status).update(status=Round.Status.FAILED):
            job_finish(job_id=job_id, status=Job.Status.FAILED, error=error)


# --- a user's data space and API token -------------------------------------------------------


def _safe_filename(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name).stem).strip(".-") or "data"
    return f"{stem[:100]}.csv"


def dataset_upload(*, owner: User, upload: UploadedFile) -> Path:
    """Store an uploaded CSV in the owner's data space under a fresh name (files in use never change)."""
    directory = user_data_dir(owner.pk)
    directory.mkdir(parents=True, exist_ok=True)
    filename = _safe_filename(upload.name or "data.csv")
    target, counter = directory / filename, 1
    while target.exists():
        counter += 1
        target = directory / f"{Path(filename).stem}-{counter}.csv"
    with target.open("wb") as stream:
        for chunk in upload.chunks():
            stream.write(chunk)
    return target


def dataset_delete(*, owner: User, name: str) -> None:
    if Path(name).name != name or not name.endswith(".csv"):
        raise FileNotFoundError(name)
    (user_data_dir(owner.pk) / name).unlink(missing_ok=True)


def api_token_regenerate(*, user: User) -> Token:
    """A new API token for the user; the old one stops working."""
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)


# --- rounds ----------------------------------------------------------------------------------


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
        _round_fail(round_.pk, job_id, from_status=Round.Status.PENDING, error=describe_error(exc))
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
    claimed = ClientUpdate.objects.filter(
        pk=update_id, status=ClientUpdate.Status.QUEUED, round__status=Round.Status.TRAINING
    ).update(status=ClientUpdate.Status.RUNNING, worker=worker, started_at=timezone.now())
    if not claimed:
        return
    update = ClientUpdate.objects.select_related("round__job").get(pk=update_id)
    round_, job = update.round, update.round.job
    spec = JobSpec.model_validate(job.spec)
    outcome: dict[str, Any]
    try:
        key = job.storage_key
        weights = artifacts.weights_load(key, round_.number - 1)
        state = artifacts.configured_state_load(key, round_.number)
        payload = engine.downlink_message(spec, weights, state, FitIns(update.client_id, update.config))
        client_state = artifacts.client_state_load(key, update.client_id, round_.number)
        uplink, new_client_state, report = engine.client_fit(spec, payload, client_state=client_state)
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
    except Exception as exc:
        logger.exception("job %s round %s client %s failed", job.pk, round_.number, update.client_id)
        outcome = {"status": ClientUpdate.Status.FAILED, "error": describe_error(exc)}

    with transaction.atomic():
        recorded = ClientUpdate.objects.filter(pk=update_id, status=ClientUpdate.Status.RUNNING).update(
            finished_at=timezone.now(), **outcome
        )
        if not recorded:
            return
        Round.objects.filter(pk=round_.pk).update(finished_clients=F("finished_clients") + 1)
        last = Round.objects.filter(
            pk=round_.pk, status=Round.Status.TRAINING, finished_clients=F("expected_clients")
        ).update(status=Round.Status.AGGREGATING)
        if last:
            transaction.on_commit(lambda: _send_task(ROUND_FINISH_TASK, round_.pk))


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
        error = (
            f"round {number}: {len(failed)} of {len(updates)} clients failed (at most {tolerance}% may fail). "
            f"Client {first.client_id}: {first.error}"
        )
        _round_fail(round_.pk, job.pk, from_status=Round.Status.AGGREGATING, error=error)
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
        _round_fail(round_.pk, job.pk, from_status=Round.Status.AGGREGATING, error=describe_error(exc))
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
            transaction.on_commit(lambda: _send_task(ROUND_START_TASK, job_id, number + 1))
        transaction.on_commit(lambda: artifacts.round_scratch_delete(job.storage_key, number))


# --- recovery ---------------------------------------------------------------------------------


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
            _send_task(ROUND_START_TASK, round_.job_id, round_.number)
            sent += 1
        elif round_.status == Round.Status.AGGREGATING:
            _send_task(ROUND_FINISH_TASK, round_.pk)
            sent += 1
        else:
            stale = round_.client_updates.filter(status=ClientUpdate.Status.RUNNING)
            if worker is not None:
                stale = stale.filter(worker=worker)
            stale.update(status=ClientUpdate.Status.QUEUED)
            for pk in round_.client_updates.filter(status=ClientUpdate.Status.QUEUED).values_list(
                "pk", flat=True
            ):
                _send_task(CLIENT_TRAIN_TASK, pk)
                sent += 1
    return sent
