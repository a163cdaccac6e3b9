"""The REST API: create from JobSpec JSON, list, detail, rounds, cancel, delete; session and
token auth; owner checks; the OpenAPI schema."""

from __future__ import annotations

import json

import pytest
import yaml
from django.contrib.auth.models import User
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from orchestrator import queues, selectors
from orchestrator.models import Job, Round
from orchestrator.services import accounts, jobs
from webui.api import RoundSerializer

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {accounts.api_token_create(user=user)[1]}")
    return client


def test_anonymous_requests_are_refused() -> None:
    assert APIClient().get("/api/jobs/").status_code in (401, 403)


def test_create_returns_201_and_queues_round_one_on_commit(
    broker, api: APIClient, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/jobs/", {"dataset": "digits", "model": "mlp", "rounds": 4}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "queued" and body["rounds_total"] == 4
    assert body["spec"]["learning_rate"] == 0.01 and body["spec"]["clients_per_round"] == 10
    assert broker.queue == [(queues.ROUND_START_TASK, (body["id"], 1))]


def test_create_with_a_prompt_keeps_it(broker, api: APIClient) -> None:
    response = api.post(
        "/api/jobs/", {"spec": {"rounds": 2}, "prompt": "two quick rounds on digits"}, format="json"
    )
    assert response.status_code == 201
    assert Job.objects.get(pk=response.json()["id"]).prompt == "two quick rounds on digits"


@pytest.mark.parametrize(
    ("spec", "fields"),
    [
        ({"partition": {"scheme": "dirichlet"}}, ["partition.alpha"]),
        ({"num_clients": 5, "clients_per_round": 6}, ["clients_per_round"]),
        ({"dataset": "cifar10", "model": "mlp"}, ["model"]),
        ({"optimizer": "lion"}, ["optimizer"]),
        ({"unknown_field": 1}, ["unknown_field"]),
        ({"dataset": "csv", "dataset_path": "/etc/passwd"}, ["dataset_path"]),
    ],
)
def test_bad_specs_get_400_with_field_named_errors(api: APIClient, spec: dict, fields: list[str]) -> None:
    response = api.post("/api/jobs/", spec, format="json")
    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == fields
    assert not Job.objects.exists()


def test_list_detail_rounds_and_cancel_are_the_owners_only(broker, api: APIClient, other_user: User) -> None:
    mine = api.post("/api/jobs/", {"rounds": 3}, format="json").json()["id"]
    theirs = jobs.job_create(owner=other_user, spec={"rounds": 3}).pk

    listed = api.get("/api/jobs/").json()
    assert [job["id"] for job in listed["results"]] == [mine]
    assert api.get(f"/api/jobs/{mine}/").json()["id"] == mine
    assert api.get(f"/api/jobs/{mine}/rounds/").json() == []
    for path in ("", "rounds/"):
        assert api.get(f"/api/jobs/{theirs}/{path}").status_code == 404
    assert api.post(f"/api/jobs/{theirs}/cancel/").status_code == 404
    assert api.delete(f"/api/jobs/{theirs}/").status_code == 404

    assert api.post(f"/api/jobs/{mine}/cancel/").json()["status"] == "cancelled"
    assert api.delete(f"/api/jobs/{mine}/").status_code == 204
    assert Job.objects.filter(pk=theirs).exists()


def test_an_active_job_cannot_be_deleted(broker, api: APIClient) -> None:
    job_id = api.post("/api/jobs/", {"rounds": 3}, format="json").json()["id"]
    Job.objects.filter(pk=job_id).update(status=Job.Status.RUNNING)
    response = api.delete(f"/api/jobs/{job_id}/")
    assert response.status_code == 409 and "cancel it" in response.json()["errors"][0]["message"]


def test_the_openapi_schema_describes_the_jobs_api(api: APIClient) -> None:
    response = api.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert {
        "/api/jobs/",
        "/api/jobs/{job_id}/",
        "/api/jobs/{job_id}/rounds/",
        "/api/jobs/{job_id}/cancel/",
    } <= set(schema["paths"])
    request = schema["paths"]["/api/jobs/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    spec_schema = request["oneOf"][0]
    assert "partition" in spec_schema["properties"]
    assert spec_schema["properties"]["partition"]["properties"]["scheme"]["enum"] == [
        "iid",
        "dirichlet",
        "shards",
    ]


def test_the_spec_json_schema_is_served(api: APIClient) -> None:
    schema = api.get("/api/spec/schema/").json()
    assert schema["title"] == "JobSpec" and "num_clients" in schema["properties"]


@pytest.mark.django_db(transaction=True)  # the services send tasks on commit
def test_rounds_rows_are_the_serializers(broker, api: APIClient, user: User) -> None:
    """The rounds endpoint reads rows, not models: its JSON is RoundSerializer's, field for field."""
    spec = {"dataset": "digits", "model": "mlp", "num_clients": 3, "rounds": 3, "local_epochs": 1}
    job = jobs.job_create(owner=user, spec=spec)
    broker.deliver()  # rounds 1-3
    Round.objects.filter(job=job, number=3).update(status=Round.Status.TRAINING)  # not completed: not listed

    rows = api.get(f"/api/jobs/{job.pk}/rounds/").json()
    expected = RoundSerializer(
        selectors.completed_rounds(job=job).prefetch_related("client_updates"), many=True
    )
    assert [row["number"] for row in rows] == [1, 2]
    assert all(len(row["clients"]) == 3 for row in rows)
    assert rows == json.loads(JSONRenderer().render(expected.data))
