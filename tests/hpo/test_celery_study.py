"""Studies through real Celery worker processes on real Redis and PostgreSQL: trials run in
parallel as ordinary jobs, and a study survives its worker being killed mid-study."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from django.contrib.auth.models import User

from orchestrator import submit
from orchestrator.hpo.services import storage
from orchestrator.models import Job, Round, Study, Trial

from ..processes import kill, start_worker, stop, worker_name

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SEARCH: dict[str, Any] = {
    "dataset": "digits",
    "model": "mlp",
    "num_clients": 3,
    "rounds": 3,
    "batch_size": 64,
    "learning_rate": 0.002,
    "hpo": {"enabled": True, "trials": 3, "fixed": ["rounds", "local_epochs"]},
}
STUDY_TIMEOUT_S = 420


def optuna_states(study: Study) -> list[str]:
    stored = optuna.load_study(
        study_name=study.optuna_name, storage=storage._storage(storage.optuna_storage_url())
    )
    return [trial.state.name for trial in stored.get_trials(deepcopy=False)]


def assert_counted_once(study: Study) -> None:
    trials = list(study.trials.order_by("number"))
    assert [t.number for t in trials] == list(range(study.trials_total))
    assert all(t.status in (Trial.Status.COMPLETE, Trial.Status.PRUNED) for t in trials)
    states = optuna_states(study)
    assert "RUNNING" not in states and "WAITING" not in states
    assert states.count("COMPLETE") + states.count("PRUNED") == study.trials_total
    for trial in trials:
        numbers = list(Round.objects.filter(job=trial.job).values_list("number", flat=True))
        assert sorted(numbers) == list(range(1, len(numbers) + 1))


def test_a_study_survives_its_worker_being_killed_mid_study(
    clean_services: None, user: User, wait_until, tmp_path: Path
) -> None:
    name = worker_name("hpo-restart")
    log = tmp_path / "worker.log"
    worker = start_worker(name, log)
    try:
        parent = submit.job_submit(owner=user, spec=SEARCH)
        study = Study.objects.get(job=parent)
        wait_until(
            lambda: Round.objects.filter(job__hpo_trial__study=study, status="completed").exists(),
            what="a trial's first round",
        )
        kill(worker)
        study.refresh_from_db()
        assert study.status == Study.Status.RUNNING  # killed mid-study
        worker = start_worker(name, log)  # the same host name: it resumes what it had claimed
        wait_until(
            lambda: Job.objects.get(pk=parent.pk).is_finished, timeout=STUDY_TIMEOUT_S, what="the study"
        )
    finally:
        stop(worker)
    parent.refresh_from_db()
    study.refresh_from_db()
    assert parent.status == Job.Status.SUCCEEDED, f"{parent.error}\n{log.read_text()[-3000:]}"
    assert study.status == Study.Status.SUCCEEDED
    assert_counted_once(study)


def test_a_three_trial_study_runs_through_the_celery_worker(
    celery_worker: str, user: User, wait_until
) -> None:
    parent = submit.job_submit(owner=user, spec=SEARCH)
    study = Study.objects.get(job=parent)
    wait_until(lambda: Job.objects.get(pk=parent.pk).is_finished, timeout=STUDY_TIMEOUT_S, what="the study")
    parent.refresh_from_db()
    study.refresh_from_db()
    assert parent.status == Job.Status.SUCCEEDED, parent.error
    assert_counted_once(study)
    trials = list(study.trials.select_related("job"))
    started = sorted(t.job.started_at for t in trials if t.job.started_at)
    finished = sorted(t.job.finished_at for t in trials if t.job.finished_at)
    assert started[1] < finished[0]  # two trials ran at the same time
    final = study.final_job
    assert final is not None and final.status == Job.Status.SUCCEEDED
    assert parent.final_accuracy == final.final_accuracy is not None
