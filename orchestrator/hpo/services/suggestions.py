"""Suggestions for a finished plain job: up to three changed specs, diagnostics first."""

from __future__ import annotations

from jobspec import JobSpec
from orchestrator.models import Job, JobSuggestions
from orchestrator.queues import SUGGESTIONS_TASK

from ..diagnostics import suggestions as diagnostic_suggestions
from ..llm import LLMProposer, configured_llm_proposer
from ..records import TrialRecord
from ..selectors import round_points, study_for_job_id
from ..space import search_space
from . import _common

MAX_SUGGESTIONS = 3


def wants_suggestions(job: Job) -> bool:
    """Plain jobs get suggestions; the jobs of a study (HPO job, trials, best-spec run) do not."""
    return study_for_job_id(job.pk) is None and not JobSpec.model_validate(job.spec).hpo.enabled


def job_suggestions_create(*, job_id: int) -> JobSuggestions | None:
    """Up to three changed specs for a finished job (diagnostics first, then the language model's),
    computed once; None for a job that gets none (still running, failed, or part of a study)."""
    job = Job.objects.filter(pk=job_id, status__in=(Job.Status.SUCCEEDED, Job.Status.CANCELLED)).first()
    if job is None or not wants_suggestions(job):
        return None
    existing = JobSuggestions.objects.filter(job=job).first()
    if existing is not None:
        return existing
    spec = JobSpec.model_validate(job.spec)
    rounds = round_points(job)
    proposals = diagnostic_suggestions(spec, rounds, MAX_SUGGESTIONS) if rounds else []
    warnings: list[str] = []
    llm: LLMProposer | None = configured_llm_proposer(search_space(spec)) if rounds else None
    if llm is not None and len(proposals) < MAX_SUGGESTIONS:
        record = TrialRecord(0, spec, "complete", rounds=rounds)
        proposals += llm.propose(spec, [record], MAX_SUGGESTIONS - len(proposals))
        warnings = llm.warnings
    items = [
        {"spec": p.spec.model_dump(mode="json"), "reason": p.reason, "source": p.source}
        for p in proposals[:MAX_SUGGESTIONS]
    ]
    suggestions, _ = JobSuggestions.objects.get_or_create(
        job=job, defaults={"items": items, "warnings": warnings}
    )
    return suggestions


def job_suggestions_request(*, job_id: int) -> None:
    _common.send_task(SUGGESTIONS_TASK, job_id)
