"""Faults on real processes: a worker killed mid-round, Redis restarted empty, the ASGI server
killed, and a cancel of a long job. Workers run with short leases and sweeps (FAULT_ENV), so
reclaiming takes seconds; every wait is bounded and says what it waited for.

The job is small but multi-round (digits, mlp, 6 clients, 5 rounds, a fixed seed, enough
local epochs that a client trains for a moment), and whatever happened to it, its rounds,
accuracies and final weights must be those of an undisturbed in-process run of the same spec.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from django.conf import settings
from django.contrib.auth.models import User

from jobspec import JobSpec
from orchestrator import artifacts
from orchestrator.fl.simulation import InProcessJob
from orchestrator.models import ClientUpdate, Job, Round
from orchestrator.services import jobs
from webui.celery import app

from ..processes import free_port, kill, start_redis, start_server, start_worker, stop, worker_name

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SPEC: dict[str, Any] = {
    "name": "fault test",
    "dataset": "digits",
    "model": "mlp",
    "num_clients": 6,
    "clients_per_round": 6,
    "rounds": 5,
    "local_epochs": 30,
    "batch_size": 32,
    "seed": 7,
}
FAULT_ENV = {
    "FLOTILLA_LEASE_SECONDS": "6",
    "FLOTILLA_RECLAIM_SECONDS": "2",
    "FLOTILLA_STALL_FAIL_SECONDS": "0",
}
JOB_TIMEOUT_S = 240
TIMINGS: dict[str, float] = {}


def wait(condition: Callable[[], bool], *, timeout: float, what: str, logs: Sequence[Path] = ()) -> float:
    """Poll until `condition` holds; returns the seconds it took (fails naming `what`)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            tails = "".join(f"\n--- {log.name}:\n{log.read_text()[-2500:]}" for log in logs if log.exists())
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{tails}")
        time.sleep(0.1)
    return time.monotonic() - start


def finished(job: Job) -> Callable[[], bool]:
    return lambda: Job.objects.get(pk=job.pk).is_finished


def training(job: Job, *, worker: str | None = None, round_number: int | None = None) -> Callable[[], bool]:
    def condition() -> bool:
        running = ClientUpdate.objects.filter(round__job=job, status=ClientUpdate.Status.RUNNING)
        if worker is not None:
            running = running.filter(worker=worker)
        if round_number is not None:
            running = running.filter(round__number=round_number)
        return running.exists()

    return condition


@dataclass
class Reference:
    accuracies: list[float]
    weights: dict[str, torch.Tensor]


@pytest.fixture(scope="module")
def reference() -> Reference:
    """The undisturbed run: the engine in this process, one torch thread like each worker process."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = InProcessJob(JobSpec.model_validate(SPEC))
        accuracies = [summary.accuracy for summary in run]
    finally:
        torch.set_num_threads(threads)
    return Reference(accuracies, run.weights)


def assert_same_as_undisturbed(job: Job, reference: Reference) -> None:
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    rounds = list(Round.objects.filter(job=job).order_by("number"))
    assert [(r.number, r.status) for r in rounds] == [(n, "completed") for n in range(1, 6)]
    for round_ in rounds:
        updates = list(round_.client_updates.all())
        # Exactly one update per selected client, every one done, each counted in once.
        assert sorted(u.client_id for u in updates) == sorted(round_.selected)
        assert {u.status for u in updates} == {ClientUpdate.Status.DONE}, round_
        assert round_.finished_clients == round_.expected_clients == len(updates) == 6
    assert [r.accuracy for r in rounds] == pytest.approx(reference.accuracies, abs=1e-6)
    final = artifacts.weights_load(job.storage_key, 5)
    assert final.keys() == reference.weights.keys()
    for name, tensor in final.items():
        assert torch.allclose(tensor, reference.weights[name], atol=1e-6), name
    wait(lambda: not artifacts.job_scratch_exists(job.storage_key), timeout=5, what="the round scratch to go")


@dataclass
class Processes:
    """What a test started, stopped at its end (by pid, each once)."""

    tmp: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def worker(self, role: str) -> tuple[str, subprocess.Popen[bytes]]:
        name, log = worker_name(role), self.tmp / f"{role}.log"
        self.logs.append(log)
        process = start_worker(name, log, FAULT_ENV)
        self.started.append(process)
        return name, process

    def end(self) -> None:
        for process in reversed(self.started):
            if process.poll() is None:
                stop(process)


@pytest.fixture
def processes(clean_services: None, tmp_path: Path) -> Iterator[Processes]:
    owned = Processes(tmp_path)
    try:
        yield owned
    finally:
        owned.end()


def test_a_worker_killed_while_training_loses_nothing(processes: Processes, user: User, reference) -> None:
    name_a, worker_a = processes.worker("fault-a")
    name_b, _ = processes.worker("fault-b")
    job = jobs.job_create(owner=user, spec=SPEC)
    wait(
        training(job, worker=name_a, round_number=2),
        timeout=JOB_TIMEOUT_S,
        what="worker A to train a client of round 2",
        logs=processes.logs,
    )
    lost = list(
        ClientUpdate.objects.filter(round__job=job, status="running", worker=name_a).values_list(
            "pk", flat=True
        )
    )
    kill(worker_a)  # its process group: the worker and its pool children, mid-batch
    TIMINGS["kill_to_done_s"] = wait(
        finished(job), timeout=JOB_TIMEOUT_S, what="the job to finish without worker A", logs=processes.logs
    )

    assert_same_as_undisturbed(job, reference)
    for update in ClientUpdate.objects.filter(pk__in=lost):
        assert update.attempts >= 2 and update.worker != name_a, (update, update.worker)
    assert not ClientUpdate.objects.filter(round__job=job, worker=name_a, round__number__gt=2).exists()
    print(f"worker A killed holding {len(lost)} claim(s); job done {TIMINGS['kill_to_done_s']:.1f} s later")


@dataclass
class PrivateRedis:
    port: int
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def restart(self) -> None:
        self.process = start_redis(self.port, self.log)


def use_broker(url: str, *, close_current: bool = False) -> None:
    """Point this process's Celery app (and the workers it starts, through REDIS_URL) at `url`.
    kombu keeps one connection pool per broker: switching back finds the earlier one open."""
    if close_current and app._pool is not None:
        app._pool.force_close_all()
    settings.REDIS_URL = url
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of this test's own (never the shared one), used as the broker meanwhile."""
    port, log = free_port(), tmp_path / "redis.log"
    server = PrivateRedis(port, log, start_redis(port, log))
    before = settings.REDIS_URL
    use_broker(server.url)
    try:
        yield server
    finally:
        use_broker(before, close_current=True)
        if server.process.poll() is None:
            stop(server.process)


def test_redis_restarted_empty_mid_round_the_job_completes(
    private_redis: PrivateRedis, processes: Processes, user: User, reference
) -> None:
    processes.worker("redis-a")
    processes.worker("redis-b")
    job = jobs.job_create(owner=user, spec=SPEC)
    wait(training(job, round_number=3), timeout=JOB_TIMEOUT_S, what="round 3 to train", logs=processes.logs)

    kill(private_redis.process)  # queued messages die with it: no persistence
    time.sleep(3)
    private_redis.restart()
    TIMINGS["redis_up_to_done_s"] = wait(
        finished(job),
        timeout=60,
        what="the job to finish within 60 s of Redis answering",
        logs=processes.logs,
    )

    assert_same_as_undisturbed(job, reference)
    print(f"Redis back; job done {TIMINGS['redis_up_to_done_s']:.1f} s later")


def test_the_server_killed_mid_round_rounds_go_on(processes: Processes, user: User, reference) -> None:
    import urllib.request

    port = free_port()
    server = start_server(port, processes.tmp / "uvicorn.log")
    processes.started.append(server)
    processes.worker("server-a")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
        assert response.status == 200
    job = jobs.job_create(owner=user, spec=SPEC)
    wait(training(job, round_number=2), timeout=JOB_TIMEOUT_S, what="round 2 to train", logs=processes.logs)
    kill(server)
    wait(
        finished(job), timeout=JOB_TIMEOUT_S, what="the job to finish without its server", logs=processes.logs
    )
    assert_same_as_undisturbed(job, reference)


def test_cancelling_a_long_job_stops_it_within_seconds(processes: Processes, user: User, settings) -> None:
    # An operator who allows hours of local training (the defaults would refuse this job).
    settings.FLOTILLA_MAX_LOCAL_EPOCHS, settings.FLOTILLA_MAX_JOB_WORK = 100_000, 10**12
    processes.worker("cancel-a")
    job = jobs.job_create(owner=user, spec={**SPEC, "local_epochs": 100_000, "rounds": 2})
    lease = float(FAULT_ENV["FLOTILLA_LEASE_SECONDS"])

    def in_batches() -> bool:
        running = list(ClientUpdate.objects.filter(round__job=job, status="running"))
        return bool(running) and all(
            u.lease_expires_at
            and u.started_at
            and (u.lease_expires_at - u.started_at).total_seconds() > lease + 0.5
            for u in running
        )

    # Every running client renewed its lease (it is in its batches, of hours of local epochs).
    wait(in_batches, timeout=JOB_TIMEOUT_S, what="the clients to train a while", logs=processes.logs)

    start = time.monotonic()
    assert jobs.job_cancel(job=job).status in (Job.Status.CANCELLING, Job.Status.CANCELLED)
    wait(
        lambda: Job.objects.get(pk=job.pk).status == Job.Status.CANCELLED,
        timeout=5,
        what="the job to be cancelled within 5 s",
        logs=processes.logs,
    )
    TIMINGS["cancel_s"] = time.monotonic() - start

    round_ = Round.objects.get(job=job)
    assert round_.status == Round.Status.CANCELLED
    updates = list(round_.client_updates.all())
    assert {u.status for u in updates} == {ClientUpdate.Status.FAILED}
    assert {u.error for u in updates} == {"cancelled"} and not any(u.bytes_up for u in updates)
    # Removed right after the cancel commits (by the worker, in an on-commit hook).
    wait(lambda: not artifacts.job_scratch_exists(job.storage_key), timeout=5, what="the round scratch to go")
    print(f"cancelled in {TIMINGS['cancel_s']:.2f} s")
