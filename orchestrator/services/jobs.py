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
from orchestrator.models import Job, Round
from orchestrator.queues import ROUND_START_TASK

from . import _common


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
