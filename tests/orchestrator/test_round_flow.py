"""The Celery round flow, run in-process: every task the services send is delivered
by the test, so duplicates, cancels, failures and restarts are played exactly."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from django.contrib.auth.models import User

from jobspec import JobSpec
from orchestrator import artifacts, queues
from orchestrator.fl import engine
from orchestrator.fl.simulation import InProcessJob
from orchestrator.fl.wire import decode_message
from orchestrator.models import ClientUpdate, Job, MetricPoint, Round
from orchestrator.services import jobs
from orchestrator.services.recovery import jobs_resume
from orchestrator.services.rounds import client_train, round_finish, round_start

pytestmark = pytest.mark.django_db(transaction=True)

SMALL = {
    "dataset": "digits",
    "model": "mlp",
    "num_clients": 4,
    "clients_per_round": 3,
    "rounds": 3,
    "local_epochs": 1,
    "batch_size": 64,
}


def state_of(job: Job) -> dict[str, Any]:
    """Everything the database holds about a job, to compare before and after."""
    job.refresh_from_db()
    return {
        "job": (job.status, job.current_round, job.final_accuracy, job.bytes_up_total, job.bytes_down_total),
        "rounds": list(
            Round.objects.filter(job=job).order_by("number").values_list("number", "status", "accuracy")
        ),
        "updates": list(
            ClientUpdate.objects.filter(round__job=job)
            .order_by("round__number", "client_id")
            .values_list("round__number", "client_id", "status", "bytes_up", "train_loss")
        ),
        "points": MetricPoint.objects.filter(job=job).count(),
    }


def test_duplicated_tasks_run_a_job_once_with_the_engines_numbers(broker, user: User) -> None:
    job = jobs.job_create(owner=user, spec=SMALL)
    assert broker.queue == [(queues.ROUND_START_TASK, (job.pk, 1))]

    broker.deliver(times=2)  # every task delivered twice

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    rounds = list(Round.objects.filter(job=job).order_by("number"))
    assert [r.number for r in rounds] == [1, 2, 3]
    for round_ in rounds:
        updates = list(round_.client_updates.all())
        assert len(updates) == 3 == round_.expected_clients == round_.finished_clients
        assert all(u.status == ClientUpdate.Status.DONE for u in updates)
        assert round_.bytes_up == sum(u.bytes_up for u in updates) > 0
        assert round_.bytes_down == sum(u.bytes_down for u in updates) > 0
        assert sorted(round_.selected) == sorted(u.client_id for u in updates)
    assert job.bytes_up_total == sum(r.bytes_up for r in rounds)
    assert MetricPoint.objects.filter(job=job, name="accuracy").count() == 3

    # The same engine steps in one process give the same figures.
    torch.manual_seed(0)
    reference = list(InProcessJob(JobSpec.model_validate(SMALL)))
    assert [r.accuracy for r in rounds] == pytest.approx([s.accuracy for s in reference], abs=1e-9)
    assert [r.loss for r in rounds] == pytest.approx([s.loss for s in reference], rel=1e-6)
    assert [r.bytes_up for r in rounds] == [s.bytes_up for s in reference]
    assert [r.bytes_down for r in rounds] == [s.bytes_down for s in reference]

    final = artifacts.weights_load(job.storage_key, 3)
    accuracy, _ = engine.evaluate_weights(JobSpec.model_validate(job.spec), final)
    assert accuracy == pytest.approx(job.final_accuracy)
    assert not artifacts.round_dir(job.storage_key, 3).exists()  # uplinks of finished rounds are dropped


def test_redelivering_any_task_after_the_job_ended_changes_nothing(broker, user: User) -> None:
    job = jobs.job_create(owner=user, spec=SMALL)
    broker.deliver()
    before = state_of(job)

    for round_ in Round.objects.filter(job=job):
        round_start(job_id=job.pk, round_number=round_.number)
        round_finish(round_id=round_.pk)
        for update in round_.client_updates.all():
            client_train(update_id=update.pk)

    assert state_of(job) == before
    assert broker.queue == []


def test_cancelling_a_queued_job_stops_it_before_any_round(broker, user: User) -> None:
    job = jobs.job_create(owner=user, spec=SMALL)
    assert jobs.job_cancel(job=job).status == Job.Status.CANCELLED
    broker.deliver()
    assert not ClientUpdate.objects.filter(round__job=job).exists()
    assert Round.objects.get(job=job).status == Round.Status.CANCELLED


def test_cancelling_a_running_job_stops_it_now(broker, user: User) -> None:
    job = jobs.job_create(owner=user, spec=SMALL)
    broker.deliver(only=queues.ROUND_START_TASK)
    # No client trains yet: the round and the job are cancelled at once.
    assert jobs.job_cancel(job=job).status == Job.Status.CANCELLED
    broker.deliver()  # the clients' queued messages find nothing to claim
    job.refresh_from_db()
    assert job.current_round == 0
    assert list(Round.objects.filter(job=job).values_list("number", "status")) == [(1, "cancelled")]
    assert set(ClientUpdate.objects.filter(round__job=job).values_list("status", "error")) == {
        ("failed", "cancelled")
    }
    assert not artifacts.job_scratch_exists(job.storage_key)


def test_cancelling_while_aggregating_records_the_round_then_stops(broker, user: User) -> None:
    job = jobs.job_create(owner=user, spec=SMALL)
    broker.deliver(only=queues.ROUND_START_TASK)
    broker.deliver(only=queues.CLIENT_TRAIN_TASK)
    assert jobs.job_cancel(job=job).status == Job.Status.CANCELLING
    broker.deliver()
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert job.current_round == 1
    assert list(Round.objects.filter(job=job).values_list("number", "status")) == [(1, "completed")]


def failing_for(client_ids: set[int], error: Exception):
    original = engine.client_fit

    def client_fit(spec: JobSpec, payload: bytes, **kwargs):
        _, meta = decode_message(payload)
        if meta["client_id"] in client_ids:
            raise error
        return original(spec, payload, **kwargs)

    return client_fit


def test_a_failed_client_is_recorded_and_the_round_goes_on(broker, user: User, monkeypatch) -> None:
    monkeypatch.setattr(engine, "client_fit", failing_for({0}, RuntimeError("disk full")))
    job = jobs.job_create(owner=user, spec={**SMALL, "clients_per_round": 4, "rounds": 1})
    broker.deliver()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    round_ = Round.objects.get(job=job)
    assert round_.failures == [
        {"client_id": 0, "error": "internal error (RuntimeError: disk full); the worker log has the details"}
    ]
    assert ClientUpdate.objects.get(round=round_, client_id=0).status == ClientUpdate.Status.FAILED
    assert round_.bytes_up == sum(u.bytes_up for u in round_.client_updates.filter(status="done"))


def test_too_many_failed_clients_fail_the_job_with_the_reason(broker, user: User, monkeypatch) -> None:
    monkeypatch.setattr(engine, "client_fit", failing_for({0, 1, 2, 3}, ValueError("labels out of range")))
    job = jobs.job_create(owner=user, spec={**SMALL, "clients_per_round": 4})
    broker.deliver()
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error.startswith("round 1: 4 of 4 clients failed")
    assert "labels out of range" in job.error
    assert not Round.objects.filter(job=job, number=2).exists()


def test_a_missing_data_set_fails_the_job_naming_the_directory(broker, user: User, settings) -> None:
    job = jobs.job_create(owner=user, spec={"dataset": "mnist", "rounds": 1})
    broker.deliver()
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "mnist" in job.error and str(settings.FLOTILLA_DATA_DIR) in job.error


def test_a_restarted_worker_gets_back_the_work_it_had_claimed(broker, user: User) -> None:
    job = jobs.job_create(owner=user, spec={**SMALL, "rounds": 2})
    broker.deliver(only=queues.ROUND_START_TASK)
    claimed = ClientUpdate.objects.filter(round__job=job).order_by("client_id").first()
    assert claimed is not None
    ClientUpdate.objects.filter(pk=claimed.pk).update(status=ClientUpdate.Status.RUNNING, worker="lost@host")
    broker.queue.clear()  # the worker died with its messages

    assert jobs_resume(worker="lost@host") == 3
    broker.deliver()

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.current_round == 2
