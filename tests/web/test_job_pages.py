"""Pages: login, the job form, the job page, downloads, delete, data uploads; and that
nobody sees another user's jobs."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from safetensors.torch import load as load_safetensors

from orchestrator import artifacts, queues, selectors
from orchestrator.limits import user_data_dir
from orchestrator.models import ClientUpdate, Job, Round
from orchestrator.services import jobs, rounds
from webui.templatetags.flotilla import duration

TINY = {"dataset": "digits", "model": "mlp", "num_clients": 3, "rounds": 2, "batch_size": 64}


@pytest.fixture
def client_for():
    def make(user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def finished_job(broker, user: User) -> Job:
    job = jobs.job_create(owner=user, spec={**TINY, "name": "tiny"})
    broker.deliver()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    return job


@pytest.mark.django_db
def test_pages_need_a_login(client: Client) -> None:
    for url in ("/jobs/", "/jobs/new/", "/data/", "/account/token/", "/jobs/1/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_the_new_job_page_renders_the_generated_form_and_presets(client_for, user: User) -> None:
    page = client_for(user).get("/jobs/new/").content.decode()
    for name in ("dataset", "partition.alpha", "compression.method", "dp.clip_norm", "hpo.fixed"):
        assert f'name="{name}"' in page
    assert 'href="?preset=digits-mlp"' in page
    prefilled = client_for(user).get("/jobs/new/?preset=digits-label-skew").content.decode()
    assert '<option value="dirichlet" selected>' in prefilled
    assert 'value="0.3"' in prefilled


@pytest.mark.django_db
def test_submitting_the_form_creates_a_job(broker, client_for, user: User) -> None:
    response = client_for(user).post(
        "/jobs/new/",
        {"dataset": "digits", "model": "mlp", "num_clients": "5", "rounds": "3", "optimizer": "sgd"},
    )
    job = Job.objects.get(owner=user)
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.spec["num_clients"] == 5 and job.spec["optimizer"] == "sgd" and job.rounds_total == 3


@pytest.mark.django_db
def test_an_invalid_form_shows_the_error_at_its_field(client_for, user: User) -> None:
    response = client_for(user).post(
        "/jobs/new/",
        {"dataset": "digits", "partition.scheme": "dirichlet", "num_clients": "4", "clients_per_round": "9"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    alpha = page.split('data-field="partition.alpha"')[1].split('data-field="')[0]
    assert "required (&gt; 0) when scheme is &#x27;dirichlet&#x27;" in alpha
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_job_page_shows_every_round_without_javascript(client_for, finished_job: Job) -> None:
    page = client_for(finished_job.owner).get(f"/jobs/{finished_job.pk}/").content.decode()
    assert 'id="round-1"' in page and 'id="round-2"' in page
    assert 'data-status="succeeded"' in page
    assert "round 2 of 2" in page
    assert "ws-connect" not in page  # a finished job needs no socket


@pytest.mark.django_db(transaction=True)
def test_downloads_of_a_finished_job(client_for, finished_job: Job) -> None:
    client = client_for(finished_job.owner)
    weights = client.get(f"/jobs/{finished_job.pk}/weights.safetensors")
    assert weights.status_code == 200
    tensors = load_safetensors(b"".join(weights.streaming_content))
    assert set(tensors) == set(artifacts.weights_load(finished_job.storage_key, 2))

    rows = list(
        csv.DictReader(io.StringIO(client.get(f"/jobs/{finished_job.pk}/metrics.csv").content.decode()))
    )
    assert [row["round"] for row in rows] == ["1", "2"]
    assert float(rows[-1]["accuracy"]) == pytest.approx(finished_job.final_accuracy)

    document = json.loads(client.get(f"/jobs/{finished_job.pk}/metrics.json").content)
    assert [r["round"] for r in document["rounds"]] == [1, 2]
    assert len(document["rounds"][0]["clients"]) == 3
    assert document["spec"] == finished_job.spec


@pytest.mark.django_db(transaction=True)
def test_edit_and_run_again_prefills_the_form(client_for, finished_job: Job) -> None:
    page = client_for(finished_job.owner).get(f"/jobs/new/?from={finished_job.pk}").content.decode()
    assert 'name="name" value="tiny"' in page
    assert 'name="num_clients" value="3"' in page


@pytest.mark.django_db(transaction=True)
def test_another_user_gets_nothing(client_for, finished_job: Job, other_user: User) -> None:
    intruder = client_for(other_user)
    assert f"/jobs/{finished_job.pk}/" not in intruder.get("/jobs/").content.decode()
    for url in ("", "weights.safetensors", "metrics.csv", "metrics.json", "delete/"):
        assert intruder.get(f"/jobs/{finished_job.pk}/{url}").status_code == 404
    assert intruder.post(f"/jobs/{finished_job.pk}/cancel/").status_code == 404
    assert intruder.post(f"/jobs/{finished_job.pk}/delete/").status_code == 404
    assert intruder.get(f"/jobs/new/?from={finished_job.pk}").status_code == 404
    assert Job.objects.filter(pk=finished_job.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_deleting_a_finished_job_removes_its_artifacts(client_for, finished_job: Job) -> None:
    response = client_for(finished_job.owner).post(f"/jobs/{finished_job.pk}/delete/")
    assert response.status_code == 302
    assert not Job.objects.filter(pk=finished_job.pk).exists()
    assert not artifacts.job_dir(finished_job.storage_key).exists()


@pytest.mark.django_db
def test_cancel_from_the_live_page_and_from_a_plain_form(broker, client_for, user: User) -> None:
    first = jobs.job_create(owner=user, spec=TINY)
    response = client_for(user).post(f"/jobs/{first.pk}/cancel/", HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    second = jobs.job_create(owner=user, spec=TINY)
    response = client_for(user).post(f"/jobs/{second.pk}/cancel/")
    assert response.status_code == 302 and response["Location"] == f"/jobs/{second.pk}/"
    assert set(Job.objects.values_list("status", flat=True)) == {"cancelled"}


@pytest.mark.django_db
def test_a_running_job_cannot_be_deleted(broker, client_for, user: User) -> None:
    job = jobs.job_create(owner=user, spec=TINY)
    client_for(user).post(f"/jobs/{job.pk}/delete/")
    assert Job.objects.filter(pk=job.pk).exists()


@pytest.mark.django_db
def test_a_failed_job_shows_why(client_for, user: User) -> None:
    job = Job.objects.create(
        owner=user,
        spec={"dataset": "mnist"},
        rounds_total=5,
        status=Job.Status.FAILED,
        error="MNIST files are missing: put them in /srv/data/mnist",
    )
    page = client_for(user).get(f"/jobs/{job.pk}/").content.decode()
    assert "This job failed." in page and "put them in /srv/data/mnist" in page


@pytest.mark.django_db
def test_uploading_a_csv_into_the_users_data_space(client_for, user: User, other_user: User) -> None:
    client = client_for(user)
    content = b"a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n"  # two rows per label: the test split needs them
    upload = SimpleUploadedFile("My Data!.csv", content, content_type="text/csv")
    assert client.post("/data/", {"file": upload}).status_code == 302
    stored = user_data_dir(user.pk) / "My-Data.csv"
    assert stored.read_bytes() == content
    assert "My-Data.csv" in client.get("/data/").content.decode()
    assert "My-Data.csv" not in client_for(other_user).get("/data/").content.decode()
    assert "My-Data.csv" in client.get("/jobs/new/").content.decode()  # offered as dataset_path

    no_label = SimpleUploadedFile("x.csv", b"a,b\n1,2\n", content_type="text/csv")
    response = client.post("/data/", {"file": no_label})
    assert response.status_code == 400 and "needs a &#x27;label&#x27; column" in response.content.decode()

    client.post("/data/My-Data.csv/delete/")
    assert not stored.exists()


@pytest.mark.django_db(transaction=True)
def test_a_running_round_shows_its_reported_clients(broker, client_for, user: User) -> None:
    job = jobs.job_create(owner=user, spec={**TINY, "name": "mid-round"})
    broker.deliver(only=queues.ROUND_START_TASK)
    first = ClientUpdate.objects.filter(round__job=job).order_by("client_id").first()
    assert first is not None
    rounds.client_train(update_id=first.pk)  # one of the three clients reports

    page = client_for(user).get(f"/jobs/{job.pk}/").content.decode()
    assert 'round 1 of 2: <span id="round-clients-done">1 of 3 clients done</span>' in page
    assert 'id="round-clients"' in page and f'data-client="{first.client_id}"' in page
    progress = selectors.round_progress(job=Job.objects.get(pk=job.pk))
    assert progress is not None and (progress.finished, progress.expected, progress.percent) == (1, 3, 17)
    assert progress.eta_s is not None and progress.eta_s >= 0


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.4, "0 s"), (42, "42 s"), (185, "3 min 5 s"), (4330, "1 h 12 min")]
)
def test_durations_read_like_time(seconds: float, text: str) -> None:
    assert duration(seconds) == text


@pytest.mark.django_db
def test_a_large_round_shows_its_latest_reports_only(user: User) -> None:
    job = Job.objects.create(owner=user, spec=TINY, rounds_total=2, status=Job.Status.RUNNING)
    round_ = Round.objects.create(job=job, number=1, status=Round.Status.TRAINING, expected_clients=40)
    start = timezone.now()
    for client in range(30):
        ClientUpdate.objects.create(
            round=round_,
            client_id=client,
            status=ClientUpdate.Status.DONE,
            finished_at=start + timedelta(seconds=client),
        )
    Round.objects.filter(pk=round_.pk).update(finished_clients=30)
    progress = selectors.round_progress(job=job)
    assert progress is not None and progress.finished == 30
    assert [row["client_id"] for row in progress.clients] == list(range(30 - selectors.REPORTED_SHOWN, 30))
