"""Task names and queues come from one table that routes them; a submitted spec becomes a job or a study;
the Optuna storage URL survives any password."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from django.contrib.auth.models import User

from orchestrator import queues, submit, tasks
from orchestrator.hpo.services import _common as hpo_services_common
from orchestrator.hpo.services import storage
from orchestrator.models import Job, Round, Study
from orchestrator.services import _common as services_common
from orchestrator.services import jobs
from webui.celery import app

PLAIN = {"dataset": "digits", "model": "mlp", "num_clients": 2, "rounds": 1}
HPO = {**PLAIN, "hpo": {"enabled": True, "trials": 2}}


def test_every_task_has_its_wire_name_and_queue_and_the_app_routes_by_them() -> None:
    declared = {
        task.name: app.amqp.router.route({}, task.name)["queue"].name
        for task in (
            tasks.round_start_task,
            tasks.round_finish_task,
            tasks.client_train_task,
            tasks.study_tick_task,
            tasks.suggestions_task,
        )
    }
    assert declared == {
        "orchestrator.round_start": "jobs",
        "orchestrator.round_finish": "jobs",
        "orchestrator.client_train": "clients",
        "orchestrator.hpo.study_tick": "hpo",
        "orchestrator.hpo.suggestions": "hpo",
    }
    assert declared == queues.TASK_QUEUES


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    collected: list[tuple[Any, ...]] = []
    monkeypatch.setattr(services_common, "send_task", lambda name, *args: collected.append((name, *args)))
    monkeypatch.setattr(
        hpo_services_common, "send_task", lambda name, *args, countdown=None: collected.append((name, *args))
    )
    return collected


@pytest.mark.django_db(transaction=True)
def test_a_plain_spec_is_submitted_as_a_job_with_its_first_round_queued(sent, user: User) -> None:
    job = submit.job_submit(owner=user, spec=PLAIN)
    assert list(Round.objects.filter(job=job).values_list("number", "status")) == [(1, "pending")]
    assert not Study.objects.filter(job=job).exists()
    assert sent == [(queues.ROUND_START_TASK, job.pk, 1)]


@pytest.mark.django_db(transaction=True)
def test_an_hpo_spec_becomes_a_study_without_rounds_of_its_own(sent, user: User) -> None:
    job = submit.job_submit(owner=user, spec=HPO)
    study = Study.objects.get(job=job)
    assert job.status == Job.Status.QUEUED and not Round.objects.filter(job=job).exists()
    assert sent == [(queues.STUDY_TICK_TASK, study.pk)]


def test_the_optuna_storage_url_quotes_the_user_and_password(monkeypatch: pytest.MonkeyPatch) -> None:
    database = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "flotilla",
        "USER": "fl@user",
        "PASSWORD": "p@ss:w/rd#?%",
        "HOST": "db.example",
        "PORT": "5433",
    }
    monkeypatch.setattr(storage, "connection", SimpleNamespace(settings_dict=database))
    url = urlsplit(storage.optuna_storage_url())
    assert (url.hostname, url.port, url.path) == ("db.example", 5433, "/flotilla")
    assert (unquote(url.username or ""), unquote(url.password or "")) == ("fl@user", "p@ss:w/rd#?%")


@pytest.mark.django_db(transaction=True)
def test_job_create_refuses_a_search_and_saves_nothing(sent, user: User) -> None:
    with pytest.raises(ValueError, match="job_submit"):
        jobs.job_create(owner=user, spec=HPO)
    assert not Job.objects.exists() and sent == []
