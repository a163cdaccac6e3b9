"""Template helpers for HPO's include point on the job page."""

from __future__ import annotations

from django import template

from orchestrator.hpo.selectors import JobPanel, job_panel
from orchestrator.models import Job

register = template.Library()


@register.simple_tag
def hpo_job_panel(job: Job) -> JobPanel:
    """The job's place in a study, or its suggestions (rendered first without JavaScript)."""
    return job_panel(job=job)
