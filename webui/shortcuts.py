"""Owner lookups shared by pages, the API and sockets: another user's object is a 404."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import Http404

from orchestrator import selectors
from orchestrator.models import Job


def own_job_or_404(user: AbstractBaseUser | AnonymousUser, job_id: int) -> Job:
    """The user's job `job_id`, or Http404 whether it is missing or someone else's."""
    job = selectors.job_for_user(user=user, job_id=job_id)
    if job is None:
        raise Http404("no such job")
    return job
