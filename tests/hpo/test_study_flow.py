"""HPO on the server, every task delivered in-process: a study's trials are child jobs,
duplicates and restarts count nothing twice, pruning and cancelling stop trial jobs."""

from __future__ import annotations

from typing import Any

import optuna
import pytest
from django.contrib.auth.models import User

from jobspec import JobSpec
from orchestrator import submit
from orchestrator.hpo.services import storage, studies
from orchestrator.hpo.tpe import OptunaProposer
from orchestrator.models import Job, Round, Study, Trial
from orchestrator.services import recovery

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

HPO_SPEC: dict[str, Any] = {
    "dataset": "digits",
    "model": "mlp",
    "num_clients": 3,
    "rounds": 2,
    "batch_size": 64,
    "learning_rate": 0.002,
    "hpo": {"enabled": True, "trials": 3, "fixed": ["rounds", "local_epochs", "architecture"]},
}


def optuna_states(study: Study) -> list[str]:
    stored = optuna.load_study(
        study_name=study.optuna_name, storage=storage._storage(storage.optuna_storage_url())
    )
    return sorted(trial.state.name for trial in stored.get_trials(deepcopy=False))


def finished(job: Job) -> bool:
    job.refresh_from_db()
    return job.is_finished


def test_a_study_runs_its_trials_as_jobs_and_reports_the_best_specs_test_accuracy(
    all_tasks, user: User
) -> None:
    parent = submit.job_submit(owner=user, spec=HPO_SPEC)
    assert not Round.objects.filter(job=parent).exists()  # an HPO job has no rounds of its own
    study = Study.objects.get(job=parent)
    assert (study.trials_total, study.parallel_trials) == (3, 2)

    all_tasks.deliver(times=2)  # every task delivered twice: duplicates must change nothing

    parent.refresh_from_db()
    study.refresh_from_db()
    assert parent.status == Job.Status.SUCCEEDED, parent.error
    assert study.status == Study.Status.SUCCEEDED
    trials = list(study.trials.order_by("number"))
    assert [t.number for t in trials] == [0, 1, 2]
    assert trials[0].source == "base" and trials[0].reason == "the starting spec"
    assert {t.status for t in trials} <= {Trial.Status.COMPLETE, Trial.Status.PRUNED}
    for trial in trials:
        spec = JobSpec.model_validate(trial.job.spec)
        assert spec.validation_fraction == 0.1 and not spec.hpo.enabled
        assert (spec.rounds, spec.local_epochs, spec.architecture) == (2, 1, None)  # hpo.fixed
        metrics = [r.metrics for r in trial.job.rounds.order_by("number")]
        assert trial.value == metrics[trial.reported_round - 1]["val_accuracy"]
    assert optuna_states(study) == sorted(
        "COMPLETE" if t.status == Trial.Status.COMPLETE else "PRUNED" for t in trials
    )

    best = max((t for t in trials if t.status == Trial.Status.COMPLETE), key=lambda t: t.value or 0)
    assert study.best_trial == best
    final = study.final_job
    assert final is not None and final.status == Job.Status.SUCCEEDED
    final_spec = JobSpec.model_validate(final.spec)
    assert final_spec.validation_fraction == 0.0
    best_spec = JobSpec.model_validate(best.job.spec)
    assert final_spec.model_dump(exclude={"name", "validation_fraction"}) == best_spec.model_dump(
        exclude={"name", "validation_fraction"}
    )
    assert parent.final_accuracy == final.final_accuracy is not None
    assert Job.objects.filter(owner=user).count() == 1 + 3 + 1


def test_a_pruned_trial_job_stops_before_its_last_round(all_tasks, user: User, monkeypatch) -> None:
    real_report = OptunaProposer.report

    def prune_trial_one(self: OptunaProposer, key: int, server_round: int, value: float) -> bool:
        real_report(self, key, server_round, value)
        trial = Trial.objects.filter(optuna_number=key).first()
        return trial is not None and trial.number == 1

    monkeypatch.setattr(OptunaProposer, "report", prune_trial_one)
    spec = {**HPO_SPEC, "rounds": 4, "hpo": {**HPO_SPEC["hpo"], "trials": 2}}
    parent = submit.job_submit(owner=user, spec=spec)
    all_tasks.deliver()

    parent.refresh_from_db()
    assert parent.status == Job.Status.SUCCEEDED, parent.error
    pruned = Trial.objects.get(study__job=parent, number=1)
    assert pruned.status == Trial.Status.PRUNED and pruned.reported_round == 1
    pruned.job.refresh_from_db()
    assert pruned.job.status == Job.Status.CANCELLED
    assert pruned.job.current_round < 4  # cancelled after its current round, not run to the end
    assert Trial.objects.get(study__job=parent, number=0).status == Trial.Status.COMPLETE


def test_cancelling_the_study_cancels_its_trials(all_tasks, user: User) -> None:
    parent = submit.job_submit(owner=user, spec={**HPO_SPEC, "rounds": 3})
    study = Study.objects.get(job=parent)
    all_tasks.deliver(
        until=lambda: Round.objects.filter(job__hpo_trial__study=study, status="completed").exists()
    )
    assert study.trials.filter(status=Trial.Status.RUNNING).exists()
    started = study.trials.count()

    studies.study_cancel(study=study)
    all_tasks.deliver()

    parent.refresh_from_db()
    study.refresh_from_db()
    assert parent.status == Job.Status.CANCELLED
    assert study.status == Study.Status.CANCELLED
    trials = list(study.trials.all())
    assert trials and all(t.status != Trial.Status.RUNNING for t in trials)
    assert all(t.job.status in (Job.Status.CANCELLED, Job.Status.SUCCEEDED) for t in trials)
    assert len(trials) == started  # no trial started after the cancel
    assert any(t.status == Trial.Status.CANCELLED for t in trials)
    assert study.final_job is None
    assert "RUNNING" not in optuna_states(study)


def test_a_study_resumes_after_lost_tasks_and_a_tick_that_died(all_tasks, user: User) -> None:
    parent = submit.job_submit(owner=user, spec=HPO_SPEC)
    study = Study.objects.get(job=parent)
    all_tasks.deliver(until=lambda: study.trials.count() >= 2)
    # A worker dies: its queued messages are gone, and a tick had asked Optuna for a trial
    # without recording it.
    all_tasks.queue.clear()
    control = studies.StudyControl(study)
    orphan = control.optuna.study.ask()

    assert studies.studies_resume() == 1
    recovery.jobs_resume()
    all_tasks.deliver()

    parent.refresh_from_db()
    study.refresh_from_db()
    assert parent.status == Job.Status.SUCCEEDED, parent.error
    assert study.trials.count() == 3
    assert orphan.number not in set(study.trials.values_list("optuna_number", flat=True))
    states = optuna_states(study)
    assert states.count("FAIL") == 1 and "RUNNING" not in states  # the orphan, failed; no trial twice
    assert len(states) == 4
