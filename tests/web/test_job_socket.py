"""The job page's WebSocket, with a real client against the ASGI app served by uvicorn
and the Redis channel layer: a snapshot first, then one message per event; other users
are refused."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from orchestrator.events import publish_round_completed, publish_status_changed
from orchestrator.models import ClientUpdate, Job, Round
from orchestrator.services import rounds

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def open_socket(server: str, job: Job, user: User | None) -> ClientConnection:
    headers = {"Origin": server}
    if user is not None:
        client = Client()
        client.force_login(user)
        headers["Cookie"] = (
            f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
    url = server.replace("http://", "ws://") + f"/ws/jobs/{job.pk}/"
    return connect(url, additional_headers=headers, open_timeout=10)


def completed_round(job: Job, number: int, accuracy: float) -> Round:
    return Round.objects.create(
        job=job,
        number=number,
        status=Round.Status.COMPLETED,
        accuracy=accuracy,
        loss=1.0 - accuracy,
        bytes_up=1000 * number,
        bytes_down=2000 * number,
        selected=[0, 2],
        metrics={"sim_latency_s": 1.5},
    )


@pytest.fixture
def running_job(clean_services: None, user: User) -> Job:
    job = Job.objects.create(
        owner=user, spec={"dataset": "digits"}, rounds_total=3, status=Job.Status.RUNNING
    )
    completed_round(job, 1, 0.5)
    Job.objects.filter(pk=job.pk).update(current_round=1)
    return job


def next_round_completes(job: Job) -> None:
    completed_round(job, 2, 0.75)
    Job.objects.filter(pk=job.pk).update(current_round=2)
    publish_round_completed(job.pk, 2)


def job_succeeds(job: Job) -> None:
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED)
    publish_status_changed(job.pk, Job.Status.SUCCEEDED, finished=True)


def receive(socket: ClientConnection) -> str:
    message = socket.recv(timeout=10)
    assert isinstance(message, str)
    return message


def test_the_owner_gets_a_snapshot_then_each_new_round(
    live_server_url: str, running_job: Job, user: User
) -> None:
    with open_socket(live_server_url, running_job, user) as socket:
        snapshot = receive(socket)
        assert 'id="job-live"' in snapshot and 'data-current-round="1"' in snapshot
        assert 'id="round-1"' in snapshot and 'id="round-2"' not in snapshot
        assert "Simulated latency (s): 1.5" in snapshot

        next_round_completes(running_job)
        live = receive(socket)
        assert 'id="round-2"' in live and 'id="round-1"' not in live
        assert 'data-current-round="2"' in live and "round 2 of 3" in live

        job_succeeds(running_job)
        final = receive(socket)
        assert 'data-status="succeeded"' in final and "<tr" not in final
        with pytest.raises(TimeoutError):
            socket.recv(timeout=0.5)


def test_a_reconnecting_page_gets_every_round_again(
    live_server_url: str, running_job: Job, user: User
) -> None:
    next_round_completes(running_job)
    with open_socket(live_server_url, running_job, user) as socket:
        snapshot = receive(socket)
        assert snapshot.index('id="round-1"') < snapshot.index('id="round-2"')


@pytest.mark.parametrize("who", ["other", "anonymous"])
def test_anyone_but_the_owner_is_refused(
    live_server_url: str, running_job: Job, other_user: User, who: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        open_socket(live_server_url, running_job, other_user if who == "other" else None)
    assert refused.value.response.status_code == 403


def test_each_reported_client_moves_the_running_round_on(
    live_server_url: str, running_job: Job, user: User
) -> None:
    round_2 = Round.objects.create(
        job=running_job, number=2, status=Round.Status.TRAINING, expected_clients=3, selected=[0, 1, 2]
    )
    updates = [
        ClientUpdate.objects.create(round=round_2, client_id=client, status=ClientUpdate.Status.RUNNING)
        for client in (0, 1, 2)
    ]
    with open_socket(live_server_url, running_job, user) as socket:
        assert "0 of 3 clients done" in receive(socket)
        rounds.client_update_record(
            update_id=updates[1].pk,
            round_id=round_2.pk,
            claim={},
            outcome={"status": ClientUpdate.Status.DONE, "train_loss": 0.25, "wall_s": 1.5, "bytes_up": 2048},
        )
        message = receive(socket)
        assert "1 of 3 clients done" in message and 'data-client="1"' in message and "2.0 KB" in message
        # A training client's heartbeat says how far it got.
        heartbeat = rounds.LeaseHeartbeat(update_id=updates[2].pk, worker="", attempt=0)
        heartbeat(1, 10)  # the first batch: renewed, no event yet
        heartbeat.next_at = 0
        heartbeat(5, 10)
        message = receive(socket)
    assert "client 0 0%, client 2 50%" in message, message
    # Opened now, the page's snapshot shows the same.
    with open_socket(live_server_url, running_job, user) as socket:
        assert "1 of 3 clients done" in receive(socket)
