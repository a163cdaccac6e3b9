"""Submitting a spec, above the core job services and HPO: a spec with hpo.enabled becomes
an HPO job running a study of trial jobs, any other a job running its own rounds."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from jobspec import JobSpec

from .hpo.services.studies import study_create
from .models import Job
from .services import jobs


def job_submit(*, owner: User, spec: JobSpec | dict[str, Any], prompt: str = "") -> Job:
    """Admit and save the job, then start its rounds or its study once the row is committed.

    Raises SpecRejected (errors name the field) as `jobs.job_admit` does; nothing is queued.
    """
    with transaction.atomic():
        job = jobs.job_admit(owner=owner, spec=spec, prompt=prompt)
        if JobSpec.model_validate(job.spec).hpo.enabled:
            study_create(job=job)
        else:
            jobs.job_start(job=job)
    return job
