"""A job's life outside its rounds: admit, start, cancel, delete, and the status moves
the round pipeline and HPO make (`job_mark_running`, `job_finish`).

Which of a job or an HPO study a spec becomes is `submit.job_submit`'s choice, above
this module and HPO.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from pydantic import ValidationError

from jobspec import JobSpec, spec_errors
from orchestrator import artifacts
from orchestrator.events import publish_status_changed
from orchestrator.fl.csv_models import CsvModelMismatch, csv_model_resolve
from orchestrator.fl.text import hf_model_location_error
from orchestrator.limits import SpecRejected, admission_errors, dataset_path_resolve
from orchestrator.models import ClientUpdate, Job, Round
from orchestrator.queues import ROUND_START_TASK

from . import _common

# The error of a client update that stopped because its job was cancelled.
CANCELLED_ERROR = "cancelled"


class JobBusy(Exception):
    """The job is still queued or running; cancel it first."""


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
    transaction.on_commit(lambda: _common.send_task(ROUND_START_TASK, job.pk, 1))


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
    """Stop a job now: a queued one at once; a running one becomes `cancelling`, and its
    training clients see that between two batches (`rounds.LeaseHeartbeat`) and stop without
    a result. The round is cancelled, and the job `cancelled`, as soon as no client of it still
    trains: here when none does, else by the last client to stop (or a worker's sweep,
    `recovery.work_reclaim`, for a client whose worker died). A round being aggregated completes
    first (seconds), then the job is cancelled."""
    with transaction.atomic():
        if Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
            status=Job.Status.CANCELLED, finished_at=timezone.now()
        ):
            Round.objects.filter(job=job, status=Round.Status.PENDING).update(status=Round.Status.CANCELLED)
            publish_status_changed(job.pk, Job.Status.CANCELLED, finished=True)
            transaction.on_commit(lambda: job_scratch_cleanup(job_id=job.pk))
        elif Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(status=Job.Status.CANCELLING):
            publish_status_changed(job.pk, Job.Status.CANCELLING, finished=False)
            for round_id in Round.objects.filter(
                job=job, status__in=(Round.Status.PENDING, Round.Status.TRAINING)
            ).values_list("pk", flat=True):
                round_cancel_if_idle(round_id=round_id)
    job.refresh_from_db()
    return job


def round_cancel_if_idle(*, round_id: int) -> bool:
    """Cancel a pending or training round of a cancelling job once none of its clients runs, and
    the job with it (its scratch files go with the job's end). True if this call cancelled it."""
    with transaction.atomic():
        round_ = Round.objects.select_for_update().filter(pk=round_id).first()
        if round_ is None or round_.status not in (Round.Status.PENDING, Round.Status.TRAINING):
            return False
        if not Job.objects.filter(pk=round_.job_id, status=Job.Status.CANCELLING).exists():
            return False
        if round_.client_updates.filter(status=ClientUpdate.Status.RUNNING).exists():
            return False
        round_.client_updates.filter(status=ClientUpdate.Status.QUEUED).update(
            status=ClientUpdate.Status.FAILED, error=CANCELLED_ERROR, lease_expires_at=None
        )
        Round.objects.filter(pk=round_id).update(status=Round.Status.CANCELLED, completed_at=timezone.now())
        job_finish(job_id=round_.job_id, status=Job.Status.CANCELLED)
    return True


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
        transaction.on_commit(lambda: job_scratch_cleanup(job_id=job_id))
    return bool(changed)


def job_scratch_cleanup(*, job_id: int) -> None:
    """Drop a finished job's round scratch (uplinks, configured states) and superseded client
    states; its weights and server states stay. Idempotent: the worker sweep repeats it for
    recently finished jobs, in case a process died between a commit and this."""
    job = Job.objects.filter(pk=job_id).only("pk", "created_at").first()
    if job is not None:
        artifacts.job_scratch_delete(job.storage_key)
