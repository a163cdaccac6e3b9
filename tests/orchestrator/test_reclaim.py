"""The workers' sweep (`recovery.work_reclaim`), the lease heartbeat and cancel-now, in-process:
tasks the services send go to the test's broker stand-in, time is moved by editing rows."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from orchestrator import artifacts, liveness, queues
from orchestrator.fl import engine
from orchestrator.models import ClientUpdate, Job, Round, WorkerHeartbeat
from orchestrator.services import jobs, rounds
from orchestrator.services.recovery import jobs_stalled_fail, work_reclaim

pytestmark = pytest.mark.django_db(transaction=True)

SMALL = {
    "dataset": "digits",
    "model": "mlp",
    "num_clients": 4,
    "clients_per_round": 4,
    "rounds": 2,
    "local_epochs": 1,
    "batch_size": 64,
}


def started(broker, user: User, **spec) -> Job:
    job = jobs.job_create(owner=user, spec={**SMALL, **spec})
    broker.deliver(only=queues.ROUND_START_TASK)
    broker.queue.clear()  # the clients' messages are lost
    return job


def claim_and_lose(update: ClientUpdate, *, worker: str = "dead@host", ago: float = 60) -> None:
    """What a worker killed while training leaves: a running claim whose lease ran out."""
    past = timezone.now() - timedelta(seconds=ago)
    ClientUpdate.objects.filter(pk=update.pk).update(
        status=ClientUpdate.Status.RUNNING,
        worker=worker,
        attempts=update.attempts + 1,
        started_at=past,
        lease_expires_at=past,
    )


def test_an_expired_lease_is_requeued_by_any_worker_and_the_job_completes(broker, user: User) -> None:
    job = started(broker, user)
    lost = ClientUpdate.objects.filter(round__job=job).order_by("client_id").first()
    assert lost is not None
    claim_and_lose(lost)
    # A claim whose lease still runs is someone's live work: left alone.
    alive = ClientUpdate.objects.filter(round__job=job).order_by("client_id")[1]
    ClientUpdate.objects.filter(pk=alive.pk).update(
        status=ClientUpdate.Status.RUNNING,
        worker="alive@host",
        attempts=1,
        lease_expires_at=timezone.now() + timedelta(seconds=60),
    )

    counts = work_reclaim(worker="other@host", queues=["clients", "jobs"])

    assert counts["requeued"] == 1
    assert (queues.CLIENT_TRAIN_TASK, (lost.pk,)) in broker.queue
    assert ClientUpdate.objects.get(pk=lost.pk).status == ClientUpdate.Status.QUEUED
    assert ClientUpdate.objects.get(pk=alive.pk).status == ClientUpdate.Status.RUNNING
    assert WorkerHeartbeat.objects.get(hostname="other@host").queues == ["clients", "jobs"]
    assert liveness.live_workers(queue="clients") == ["other@host"]

    ClientUpdate.objects.filter(pk=alive.pk).update(status=ClientUpdate.Status.QUEUED)
    broker.queue.append((queues.CLIENT_TRAIN_TASK, (alive.pk,)))
    broker.queue += [
        (queues.CLIENT_TRAIN_TASK, (u.pk,))
        for u in ClientUpdate.objects.filter(round__job=job).exclude(pk__in=[lost.pk, alive.pk])
    ]
    broker.deliver()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    first = ClientUpdate.objects.get(pk=lost.pk)
    assert first.status == ClientUpdate.Status.DONE and first.attempts == 2 and first.lease_expires_at is None
    assert not artifacts.job_scratch_exists(job.storage_key)


def test_a_client_lost_max_attempts_times_is_a_failure_in_words(broker, user: User, settings) -> None:
    settings.FLOTILLA_CLIENT_MAX_ATTEMPTS = 3
    job = started(broker, user, num_clients=2, clients_per_round=2, rounds=1)
    first, second = ClientUpdate.objects.filter(round__job=job).order_by("client_id")
    for _ in range(2):
        claim_and_lose(ClientUpdate.objects.get(pk=first.pk))
        assert work_reclaim()["requeued"] == 1
    claim_and_lose(ClientUpdate.objects.get(pk=first.pk))
    assert work_reclaim()["failed"] == 1
    lost = ClientUpdate.objects.get(pk=first.pk)
    assert (lost.status, lost.attempts, lost.error) == (
        "failed",
        3,
        "failed 3 times: worker lost while training",
    )

    claim_and_lose(ClientUpdate.objects.get(pk=second.pk), ago=1)
    ClientUpdate.objects.filter(pk=second.pk).update(attempts=3)
    work_reclaim()
    broker.deliver()  # both failed: the round fails the job (the round's own tolerance decides)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert f"Client {first.client_id} failed 3 times: worker lost while training" in job.error
    assert not artifacts.job_scratch_exists(job.storage_key)


def test_the_sweep_resends_lost_messages_of_a_round_that_does_not_move(broker, user: User, settings) -> None:
    job = started(broker, user)
    assert work_reclaim()["resent"] == 0  # the round just started: its messages may be queued
    Round.objects.filter(job=job).update(
        created_at=timezone.now() - timedelta(minutes=5), started_at=timezone.now() - timedelta(minutes=5)
    )
    assert work_reclaim()["resent"] == 4
    assert work_reclaim()["resent"] == 0  # once a lease: not at every sweep
    broker.queue.clear()
    assert work_reclaim(resend_all=True)["resent"] == 4  # after a broker reconnect: at once
    broker.deliver(times=2)  # duplicates claim nothing twice
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert ClientUpdate.objects.filter(round__job=job, status="done").count() == 8


def test_a_cancelling_job_whose_clients_are_gone_is_cancelled_by_the_sweep(broker, user: User) -> None:
    job = started(broker, user)
    update = ClientUpdate.objects.filter(round__job=job).first()
    assert update is not None
    claim_and_lose(update, ago=1)
    ClientUpdate.objects.filter(pk=update.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=30))
    assert jobs.job_cancel(job=job).status == Job.Status.CANCELLING  # a client still trains
    assert work_reclaim()["cancelled"] == 0
    ClientUpdate.objects.filter(pk=update.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    counts = work_reclaim()  # its worker died: the lease lapses, the round and job are cancelled
    assert counts["stopped"] == 1
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert Round.objects.get(job=job).status == Round.Status.CANCELLED
    assert not ClientUpdate.objects.filter(round__job=job, status__in=["queued", "running"]).exists()


def test_the_heartbeat_renews_the_lease_and_stops_training_on_cancel(broker, user: User, monkeypatch) -> None:
    monkeypatch.setattr(rounds, "HEARTBEAT_MAX_INTERVAL_S", 0.0)
    job = jobs.job_create(owner=user, spec={**SMALL, "rounds": 1, "local_epochs": 3})
    broker.deliver(only=queues.ROUND_START_TASK)
    seen: list[datetime] = []
    original = engine.client_fit

    def client_fit(spec, payload, **kwargs):
        on_batch = kwargs["on_batch"]

        def beat(done: int, total: int) -> None:
            on_batch(done, total)
            row = ClientUpdate.objects.get(round__job=job, status="running")
            assert row.lease_expires_at is not None
            seen.append(row.lease_expires_at)
            if len(seen) == 3:
                jobs.job_cancel(job=job)

        return original(spec, payload, **{**kwargs, "on_batch": beat})

    monkeypatch.setattr(engine, "client_fit", client_fit)
    broker.deliver()
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert len(seen) == 3 and seen[0] < seen[1] < seen[2]  # renewed at every beat
    assert Round.objects.get(job=job).status == Round.Status.CANCELLED
    assert set(ClientUpdate.objects.filter(round__job=job).values_list("status", "error", "bytes_up")) == {
        ("failed", "cancelled", 0)
    }


def test_a_heartbeat_whose_claim_was_taken_back_stops_with_lease_lost(broker, user: User) -> None:
    job = started(broker, user)
    update = ClientUpdate.objects.filter(round__job=job).first()
    assert update is not None
    claim_and_lose(update, worker="slow@host")
    beat = rounds.LeaseHeartbeat(update_id=update.pk, worker="slow@host", attempt=1)
    beat.next_at = 0
    beat(3, 12)  # still ours: renewed, with its progress
    renewed = ClientUpdate.objects.get(pk=update.pk)
    assert renewed.lease_expires_at is not None and renewed.lease_expires_at > timezone.now()
    assert renewed.progress == 0.25
    ClientUpdate.objects.filter(pk=update.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    work_reclaim()
    beat.next_at = 0
    with pytest.raises(rounds.LeaseLost):
        beat(4, 12)


def test_a_stalled_job_is_shown_reported_and_failed_past_the_limit(
    broker, user: User, settings, client: Client
) -> None:
    settings.FLOTILLA_STALL_SECONDS = 60
    settings.FLOTILLA_STALL_FAIL_SECONDS = 0
    job = started(broker, user)
    long_ago = timezone.now() - timedelta(minutes=10)
    Round.objects.filter(job=job).update(created_at=long_ago, started_at=long_ago)
    update = ClientUpdate.objects.filter(round__job=job).order_by("client_id").first()
    assert update is not None
    ClientUpdate.objects.filter(pk=update.pk).update(attempts=2)

    body = client.get("/healthz").json()
    assert body["jobs"]["stalled_ids"] == [job.pk] and body["jobs"]["waiting_for_worker_ids"] == [job.pk]
    assert not body["jobs"]["ok"]

    client.force_login(user)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Waiting for a worker (the clients queue) since" in page
    assert f"Client {update.client_id} tried 2 times." in page

    WorkerHeartbeat.objects.create(hostname="w@host", queues=["clients"], seen_at=timezone.now())
    stall = liveness.job_liveness(job)
    assert stall is not None and stall.stalled and not stall.waiting_for_worker
    assert client.get("/healthz").json()["jobs"]["ok"]

    settings.FLOTILLA_STALL_FAIL_SECONDS = 300
    assert jobs_stalled_fail() == 1
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error.startswith("round 1 made no progress for 10 minutes")
    assert "workers w@host are alive but the round did not move" in job.error
