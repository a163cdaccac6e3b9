"""Pages. Thin: parse the request, call one service or selector, render."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from orchestrator import artifacts, liveness, selectors, submit
from orchestrator.limits import SpecRejected, user_data_dir
from orchestrator.models import Job
from orchestrator.presets import PRESETS, preset_by_key
from orchestrator.services import accounts, dataspace
from orchestrator.services import jobs as job_services

from .forms import DatasetUploadForm, spec_form, spec_from_form
from .shortcuts import own_job_or_404


def current_user(request: HttpRequest) -> User:
    """The logged-in user (every view below requires a login)."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionError("login required")
    return user


def _uploaded_csvs(user_id: int) -> list[Path]:
    directory = user_data_dir(user_id)
    return sorted(directory.glob("*.csv")) if directory.is_dir() else []


def _form_suggestions(request: HttpRequest) -> dict[str, list[str]]:
    return {"dataset_path": [path.name for path in _uploaded_csvs(current_user(request).pk)]}


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return redirect("job_list")


@login_required
@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = list(selectors.jobs_for_user(user=request.user))
    return render(
        request,
        "jobs/list.html",
        {"jobs": jobs, "any_active": any(job.is_active for job in jobs)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def job_new(request: HttpRequest) -> HttpResponse:
    suggestions = _form_suggestions(request)
    if request.method == "POST":
        prompt = request.POST.get("prompt", "")
        try:
            job = submit.job_submit(
                owner=current_user(request), spec=spec_from_form(request.POST), prompt=prompt
            )
        except SpecRejected as rejected:
            form = spec_form(
                submitted=request.POST, errors=rejected.errors, suggestions=suggestions, prompt=prompt
            )
            return render(request, "jobs/new.html", {"form": form, "presets": PRESETS}, status=400)
        return redirect("job_detail", job_id=job.pk)

    initial: dict[str, Any] | None = None
    source_job = request.GET.get("from")
    preset = preset_by_key(request.GET.get("preset", ""))
    if source_job and source_job.isdigit():
        initial = own_job_or_404(request.user, int(source_job)).spec
    elif preset is not None:
        initial = preset.spec
        if preset.prepare is not None:
            try:
                preset.prepare()
            except Exception as exc:  # the job would fail the same way: say so now
                messages.error(request, f"This preset's data is not available: {exc}")
    form = spec_form(initial, suggestions=suggestions)
    return render(request, "jobs/new.html", {"form": form, "presets": PRESETS, "preset": preset})


def job_status_context(job: Job) -> dict[str, Any]:
    """What the job page's status block shows (the page and its socket's messages alike)."""
    return {"job": job, "liveness": liveness.job_liveness(job), "progress": selectors.round_progress(job=job)}


def job_page_context(job: Job) -> dict[str, Any]:
    views = selectors.round_views(job=job)
    return {
        **job_status_context(job),
        "round_views": views,
        "extra_metric_names": selectors.extra_metric_names(views),
        "metric_labels": selectors.METRIC_LABELS,
        "spec_json": json.dumps(job.spec, indent=2),
    }


@login_required
@require_GET
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    return render(request, "jobs/detail.html", job_page_context(own_job_or_404(request.user, job_id)))


@login_required
@require_POST
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    job = job_services.job_cancel(job=own_job_or_404(request.user, job_id))
    if request.headers.get("HX-Request"):
        return HttpResponse(status=204)  # the live page learns the new status over its socket
    messages.info(request, f"Job {job.pk} is {job.status}.")
    return redirect("job_detail", job_id=job.pk)


@login_required
@require_http_methods(["GET", "POST"])
def job_delete(request: HttpRequest, job_id: int) -> HttpResponse:
    job = own_job_or_404(request.user, job_id)
    if request.method == "GET":
        return render(request, "jobs/confirm_delete.html", {"job": job})
    try:
        job_services.job_delete(job=job)
    except job_services.JobBusy as busy:
        messages.error(request, str(busy))
        return redirect("job_detail", job_id=job.pk)
    messages.info(request, f"Deleted job {job_id}.")
    return redirect("job_list")


@login_required
@require_GET
def job_weights(request: HttpRequest, job_id: int) -> FileResponse:
    job = own_job_or_404(request.user, job_id)
    path = artifacts.weights_path(job.storage_key, job.current_round)
    if job.current_round == 0 or not path.exists():
        raise Http404("this job has no trained weights yet")
    filename = f"flotilla-job-{job.pk}-round-{job.current_round}.safetensors"
    return FileResponse(path.open("rb"), as_attachment=True, filename=filename)


@login_required
@require_GET
def job_metrics_csv(request: HttpRequest, job_id: int) -> HttpResponse:
    job = own_job_or_404(request.user, job_id)
    response = HttpResponse(selectors.metrics_csv(job=job), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="flotilla-job-{job.pk}-metrics.csv"'
    return response


@login_required
@require_GET
def job_metrics_json(request: HttpRequest, job_id: int) -> HttpResponse:
    job = own_job_or_404(request.user, job_id)
    response = JsonResponse(selectors.metrics_document(job=job), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="flotilla-job-{job.pk}-metrics.json"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def data_list(request: HttpRequest) -> HttpResponse:
    form = DatasetUploadForm()
    if request.method == "POST":
        form = DatasetUploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                stored = dataspace.dataset_upload(
                    owner=current_user(request), upload=form.cleaned_data["file"]
                )
            except dataspace.DatasetRefused as exc:
                form.add_error("file", str(exc))
            else:
                messages.info(request, f"Stored {stored.name}. Pick it as dataset 'csv' on the new-job form.")
                return redirect("data_list")
    files = [
        {"name": p.name, "size": p.stat().st_size, "path": str(p)}
        for p in _uploaded_csvs(current_user(request).pk)
    ]
    status = 400 if form.errors else 200
    return render(request, "data/list.html", {"form": form, "files": files}, status=status)


@login_required
@require_POST
def data_delete(request: HttpRequest, name: str) -> HttpResponse:
    dataspace.dataset_delete(owner=current_user(request), name=name)
    messages.info(request, f"Deleted {name}.")
    return redirect("data_list")


@login_required
@require_http_methods(["GET", "POST"])
def account_token(request: HttpRequest) -> HttpResponse:
    """The user's API tokens (prefixes and dates only); POST creates one and shows it, in this
    answer alone: only its digest is stored, so no later page can show it again."""
    user = current_user(request)
    new_token = accounts.api_token_create(user=user)[1] if request.method == "POST" else None
    response = render(
        request,
        "account/token.html",
        {
            "tokens": accounts.api_token_list(user=user),
            "new_token": new_token,
            "api_root": request.build_absolute_uri(reverse("api-job-list")),
        },
    )
    add_never_cache_headers(response)  # no cache keeps a page that showed a token
    return response


@login_required
@require_POST
def account_token_revoke(request: HttpRequest, token_key: str) -> HttpResponse:
    if not accounts.api_token_revoke(user=current_user(request), token_key=token_key):
        raise Http404("No such token.")
    messages.info(request, f"Revoked the token {token_key}…")
    return redirect("account_token")


@login_required
@require_POST
def account_token_revoke_all(request: HttpRequest) -> HttpResponse:
    count = accounts.api_token_revoke_all(user=current_user(request))
    messages.info(request, f"Revoked {count} token{'' if count == 1 else 's'}.")
    return redirect("account_token")
