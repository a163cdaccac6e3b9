"""A job through a real Celery worker process, on real Redis and PostgreSQL."""

from __future__ import annotations

import pytest
import torch
from django.contrib.auth.models import User
from django.test import Client

from jobspec import JobSpec
from orchestrator import queues
from orchestrator.fl.simulation import InProcessJob
from orchestrator.models import ClientUpdate, Job, MetricPoint, Round
from orchestrator.services import jobs
from webui.celery import app

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SPEC = {
    "name": "worker test",
    "dataset": "digits",
    "model": "mlp",
    "num_clients": 4,
    "rounds": 3,
    "local_epochs": 1,
    "batch_size": 64,
}


def test_a_three_round_job_runs_through_the_worker_and_persists(
    celery_worker: str, user: User, wait_until
) -> None:
    job = jobs.job_create(owner=user, spec=SPEC)
    # A duplicate delivery of the first round task: only one may claim the round.
    app.send_task(queues.ROUND_START_TASK, args=[job.pk, 1])

    wait_until(lambda: Job.objects.get(pk=job.pk).is_finished, what="the job to finish")
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error

    rounds = list(Round.objects.filter(job=job).order_by("number"))
    assert [(r.number, r.status) for r in rounds] == [(1, "completed"), (2, "completed"), (3, "completed")]
    updates = ClientUpdate.objects.filter(round__job=job)
    assert updates.count() == 12 and set(updates.values_list("status", flat=True)) == {"done"}
    assert set(updates.values_list("worker", flat=True)) == {celery_worker}
    for round_ in rounds:
        assert round_.bytes_up == sum(u.bytes_up for u in round_.client_updates.all()) > 0
        assert round_.client_cpu_s > 0 and round_.wall_s > 0
    assert MetricPoint.objects.filter(job=job, name="accuracy").count() == 3
    assert job.final_accuracy == rounds[-1].accuracy
    assert job.bytes_down_total == sum(r.bytes_down for r in rounds)

    # The worker's figures are the engine's: the in-process runner gives the same rounds.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reference = list(InProcessJob(JobSpec.model_validate(SPEC)))
    finally:
        torch.set_num_threads(threads)
    assert [r.accuracy for r in rounds] == pytest.approx([s.accuracy for s in reference], abs=1e-6)
    assert [r.loss for r in rounds] == pytest.approx([s.loss for s in reference], rel=1e-4)
    assert [r.bytes_up for r in rounds] == [s.bytes_up for s in reference]


def test_healthz_reports_the_database_redis_and_the_worker(celery_worker: str, client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] and body["database"]["ok"] and body["redis"]["ok"]
    assert celery_worker in body["workers"]["workers"]
