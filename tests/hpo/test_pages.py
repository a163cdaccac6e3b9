"""HPO in the browser and the REST API: suggestions on a finished job's page with "apply",
the study page and its live part, the study API; nobody sees another user's."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from orchestrator import submit
from orchestrator.models import Job, JobSuggestions, Study
from orchestrator.services import jobs

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

POOR: dict[str, Any] = {
    "dataset": "digits",
    "model": "mlp",
    "num_clients": 3,
    "rounds": 3,
    "batch_size": 64,
    "learning_rate": 0.0005,
}
SEARCH: dict[str, Any] = {**POOR, "rounds": 1, "hpo": {"enabled": True, "trials": 2, "fixed": ["rounds"]}}


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_finished_job_shows_suggestions_that_apply_to_the_form(
    all_tasks, user: User, other_user: User
) -> None:
    job = jobs.job_create(owner=user, spec=POOR)
    all_tasks.deliver()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    stored = JobSuggestions.objects.get(job=job)  # computed when the job ended
    assert 1 <= len(stored.items) <= 3
    first = stored.items[0]
    assert first["source"] == "diagnostics" and first["spec"]["learning_rate"] == 0.005

    client = client_for(user)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "learning is too slow" in page and f"/jobs/{job.pk}/suggestions/0/apply/" in page
    panel = client.get(f"/jobs/{job.pk}/hpo/")
    assert panel.status_code == 286  # nothing more to wait for: htmx stops polling

    form = client.get(f"/jobs/{job.pk}/suggestions/0/apply/").content.decode()
    assert 'action="/jobs/new/"' in form and 'value="0.005"' in form

    api = client.get(f"/api/jobs/{job.pk}/suggestions/").json()
    assert api["ready"] is True
    assert api["suggestions"][0]["changes"] == [{"field": "learning_rate", "from": 0.0005, "to": 0.005}]
    assert api["suggestions"][0]["proposed_by"] == "diagnostics"

    stranger = client_for(other_user)
    for url in (
        f"/jobs/{job.pk}/hpo/",
        f"/jobs/{job.pk}/suggestions/0/apply/",
        f"/api/jobs/{job.pk}/suggestions/",
    ):
        assert stranger.get(url).status_code == 404, url


def test_the_study_page_and_api_show_trials_curves_and_the_best_spec(
    all_tasks, user: User, other_user: User
) -> None:
    parent = submit.job_submit(owner=user, spec=SEARCH)
    study = Study.objects.get(job=parent)
    client = client_for(user)
    running = client.get(f"/studies/{study.pk}/live/")
    assert running.status_code == 200  # keeps polling while the study runs

    all_tasks.deliver()
    study.refresh_from_db()
    assert study.status == Study.Status.SUCCEEDED

    job_page = client.get(f"/jobs/{parent.pk}/").content.decode()
    assert f"/studies/{study.pk}/" in job_page and "search of 2 trials" in job_page
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert 'id="trial-0"' in page and 'id="trial-1"' in page and 'id="study-chart-data"' in page
    assert 'id="apply-best"' in page and 'id="best-test-accuracy"' in page
    assert client.get(f"/studies/{study.pk}/live/").status_code == 286

    form = client.get(f"/studies/{study.pk}/apply/").content.decode()
    assert 'action="/jobs/new/"' in form

    data = client.get(f"/api/studies/{study.pk}/").json()
    assert data["status"] == "succeeded" and data["trials_total"] == 2
    assert [t["number"] for t in data["trials"]] == [0, 1]
    assert data["trials"][0]["proposed_by"] == "base" and data["trials"][0]["changes"] == []
    assert all(len(t["curve"]) == 1 for t in data["trials"])
    assert study.final_job is not None and data["test_accuracy"] == study.final_job.final_accuracy
    assert data["best_spec"]["validation_fraction"] == 0.0 and not data["best_spec"]["hpo"]["enabled"]
    assert [s["id"] for s in client.get("/api/studies/").json()] == [study.pk]

    stranger = client_for(other_user)
    assert stranger.get("/api/studies/").json() == []
    for url in (f"/studies/{study.pk}/", f"/studies/{study.pk}/live/", f"/api/studies/{study.pk}/"):
        assert stranger.get(url).status_code == 404, url
    assert stranger.post(f"/api/studies/{study.pk}/cancel/").status_code == 404
