"""HPO pages: the study page (live trials, curves, best spec), the job page's HPO panel
(suggestions with "apply"), and "apply", which opens the new-job form pre-filled."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from orchestrator.hpo import selectors
from orchestrator.hpo.services import studies
from orchestrator.hpo.services.suggestions import job_suggestions_request
from orchestrator.models import Study
from orchestrator.presets import PRESETS

from .forms import spec_form
from .shortcuts import own_job_or_404
from .views import _form_suggestions

# htmx stops polling an element when its response has this status.
HTMX_STOP_POLLING = 286


def _own_study(request: HttpRequest, study_id: int) -> Study:
    study = selectors.study_for_user(user=request.user, study_id=study_id)
    if study is None:
        raise Http404("no such study")
    return study


def _prefilled_form(request: HttpRequest, spec: dict[str, Any], changed: list[str]) -> HttpResponse:
    form = spec_form(spec, highlighted=changed, suggestions=_form_suggestions(request))
    return render(request, "jobs/new.html", {"form": form, "presets": PRESETS})


@login_required
@require_GET
def study_detail(request: HttpRequest, study_id: int) -> HttpResponse:
    view = selectors.study_view(study=_own_study(request, study_id))
    return render(request, "hpo/study_detail.html", {"view": view, "study": view.study})


@login_required
@require_GET
def study_live(request: HttpRequest, study_id: int) -> HttpResponse:
    """The live part of the study page, polled while the study runs."""
    view = selectors.study_view(study=_own_study(request, study_id))
    response = render(request, "hpo/_study_live.html", {"view": view, "study": view.study})
    if not view.study.is_active:
        response.status_code = HTMX_STOP_POLLING
    return response


@login_required
@require_POST
def study_cancel(request: HttpRequest, study_id: int) -> HttpResponse:
    study = studies.study_cancel(study=_own_study(request, study_id))
    messages.info(
        request,
        f"Cancelling the search: its running trials stop after their current round ({study.job.status}).",
    )
    return redirect("hpo_study_detail", study_id=study.pk)


@login_required
@require_GET
def study_apply(request: HttpRequest, study_id: int) -> HttpResponse:
    view = selectors.study_view(study=_own_study(request, study_id))
    if view.best_spec is None or view.best is None:
        raise Http404("no trial has completed yet")
    return _prefilled_form(request, view.best_spec.model_dump(mode="json"), [c[0] for c in view.best.changes])


@login_required
@require_GET
def job_panel(request: HttpRequest, job_id: int) -> HttpResponse:
    """The job page's HPO panel: the job's place in a study, or the suggestions once it has ended."""
    panel = selectors.job_panel(job=own_job_or_404(request.user, job_id))
    if panel.suggestions_due:
        job_suggestions_request(job_id=panel.job.pk)  # ended before HPO was listening
    response = render(request, "hpo/_job_panel.html", {"panel": panel, "job": panel.job})
    if not panel.waiting:
        response.status_code = HTMX_STOP_POLLING
    return response


@login_required
@require_GET
def suggestion_apply(request: HttpRequest, job_id: int, rank: int) -> HttpResponse:
    suggestions = selectors.job_suggestions(job=own_job_or_404(request.user, job_id)) or []
    if not 0 <= rank < len(suggestions):
        raise Http404("no such suggestion")
    chosen = suggestions[rank]
    return _prefilled_form(request, chosen.spec, [name for name, _, _ in chosen.changes])
