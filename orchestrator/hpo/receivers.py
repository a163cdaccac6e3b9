"""HPO listens to the job events: a study ticks when one of its jobs completes a round or ends, a finished plain job gets
suggestions, and a starting worker resumes the active studies.

Connected when the orchestrator app is ready.
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_ready
from django.dispatch import receiver

from orchestrator.events import job_finished, round_completed
from orchestrator.models import Job

from .selectors import study_for_job_id
from .services.studies import studies_resume, study_tick_request
from .services.suggestions import job_suggestions_request

SUGGESTED_STATUSES = (Job.Status.SUCCEEDED, Job.Status.CANCELLED)


@receiver(round_completed, dispatch_uid="hpo.round_completed")
def tick_on_round(sender: Any = None, *, job_id: int, round_number: int, **kwargs: Any) -> None:
    study_id = study_for_job_id(job_id)
    if study_id is not None:
        study_tick_request(study_id=study_id)


@receiver(job_finished, dispatch_uid="hpo.job_finished")
def tick_or_suggest_on_end(sender: Any = None, *, job_id: int, status: str, **kwargs: Any) -> None:
    study_id = study_for_job_id(job_id)
    if study_id is not None:
        study_tick_request(study_id=study_id)
    elif status in SUGGESTED_STATUSES:
        job_suggestions_request(job_id=job_id)


@worker_ready.connect(dispatch_uid="hpo.worker_ready")
def resume_studies(sender: Any = None, **kwargs: Any) -> None:
    studies_resume()
