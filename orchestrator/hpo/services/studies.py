"""HPO on the server: studies whose trials are ordinary jobs on the Celery workers.

A study is driven by one idempotent step, `study_tick`, sent on the `hpo` queue
whenever one of its jobs completes a round or ends (and when a worker starts).
Holding the study's lease (a conditional update, so two ticks never work on it at
once), a tick:

1. reconciles Optuna with the Trial rows (a trial Optuna counts as running with
   no row, left by a tick that died, is failed; a finished row Optuna has not
   heard of is told), so no trial is ever counted twice;
2. cancels every trial when the HPO job is being cancelled;
3. reports each running trial's newly completed rounds (its validation figure)
   to Optuna, cancels the trial's job when the pruner says so, and closes trials
   whose job ended;
4. starts trials (child jobs, on a validation split) up to the parallel limit
   until the study's budget is spent;
5. when every trial has ended, runs the best trial's spec once more as a plain
   job; its test accuracy becomes the HPO job's result.

A worker that dies mid-study leaves its trial jobs to the engine's own resume
(rounds are re-claimed, not re-counted), and the tick that runs when a worker
starts picks the study up where its rows say it is.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import numpy as np
import optuna
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from optuna.trial import TrialState

from jobspec import JobSpec
from orchestrator.limits import SpecRejected
from orchestrator.models import Job, Round, Study, Trial
from orchestrator.queues import STUDY_TICK_TASK
from orchestrator.services import jobs

from ..llm import configured_llm_proposer
from ..records import Proposal
from ..selectors import OPTUNA_STATUS, best_spec, best_trial_row, objective_value, trial_records
from ..space import search_space, trial_spec
from ..study import BASE_REASON, VALIDATION_FRACTION, next_proposal
from ..tpe import OptunaProposer, create_study
from . import _common
from .storage import _storage, optuna_storage_url, parallel_trials

logger = logging.getLogger(__name__)
# Every tick loads the stored study; Optuna would log each load at INFO.
optuna.logging.set_verbosity(optuna.logging.WARNING)

LEASE_S = 60
RETRY_TICK_S = 2.0


def study_create(*, job: Job) -> Study:
    """Make `job` (a spec with hpo.enabled) an HPO job: its study starts once the job row is committed."""
    spec = JobSpec.model_validate(job.spec)
    study = Study.objects.create(
        job=job,
        optuna_name=f"flotilla-job-{job.pk}-{timezone.now():%Y%m%d%H%M%S%f}",
        trials_total=spec.hpo.trials,
        parallel_trials=min(spec.hpo.trials, parallel_trials()),
    )
    transaction.on_commit(lambda: _common.send_task(STUDY_TICK_TASK, study.pk))
    return study


def study_cancel(*, study: Study) -> Study:
    """Cancel the HPO job: its running trials stop after their current round."""
    jobs.job_cancel(job=study.job)
    _common.send_task(STUDY_TICK_TASK, study.pk)
    study.refresh_from_db()
    return study


def studies_resume() -> int:
    """Tick every active study (a worker started: pick up whatever was left mid-study)."""
    ids = list(Study.objects.filter(status__in=Study.ACTIVE_STATUSES).values_list("pk", flat=True))
    for study_id in ids:
        _common.send_task(STUDY_TICK_TASK, study_id)
    return len(ids)


def study_tick(*, study_id: int) -> None:
    """One idempotent step of a study (see the module docstring); retried later if another holds it."""
    now = timezone.now()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    active = Study.objects.filter(pk=study_id, status__in=Study.ACTIVE_STATUSES)
    if not active.filter(free).update(lease_until=now + timedelta(seconds=LEASE_S)):
        if active.exists():
            # Another tick is working on it and may have read the rows before this event: look again.
            _common.send_task(STUDY_TICK_TASK, study_id, countdown=RETRY_TICK_S)
        return
    try:
        StudyControl(Study.objects.select_related("job").get(pk=study_id)).tick()
    finally:
        Study.objects.filter(pk=study_id).update(lease_until=None)


class StudyControl:
    """What one tick does to one study (the caller holds its lease)."""

    def __init__(self, study: Study) -> None:
        self.study = study
        self.job = study.job
        self.base = JobSpec.model_validate(self.job.spec)
        self.objective = self.base.hpo.objective
        self.space = search_space(self.base)
        storage = _storage(optuna_storage_url())
        optuna_study = create_study(
            self.base, storage=storage, study_name=study.optuna_name, sampler_seed=self._sampler_seed()
        )
        self.optuna = OptunaProposer(self.space, optuna_study, storage)

    def _sampler_seed(self) -> int:
        started = Trial.objects.filter(study=self.study).count()
        return int(np.random.SeedSequence([self.base.seed, started]).generate_state(1)[0])

    def tick(self) -> None:
        if not self.optuna.study.get_trials(deepcopy=False):
            self.optuna.enqueue(Proposal(spec=self.base, reason=BASE_REASON, source="base"))
        self._start_job()
        self._reconcile()
        self.job.refresh_from_db()
        if self.job.status in (Job.Status.CANCELLING, Job.Status.CANCELLED):
            self._cancel()
            return
        self._follow_trials()
        if self.study.status == Study.Status.RUNNING:
            self._launch_trials()
            self._evaluate_best()
        elif self.study.status == Study.Status.EVALUATING:
            self._finish()

    # -- bookkeeping ------------------------------------------------------------------------

    def _start_job(self) -> None:
        with transaction.atomic():
            jobs.job_mark_running(job_id=self.job.pk)

    def _reconcile(self) -> None:
        rows = dict(Trial.objects.filter(study=self.study).values_list("optuna_number", "status"))
        values = dict(Trial.objects.filter(study=self.study).values_list("optuna_number", "value"))
        for frozen in self.optuna.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            status = rows.get(frozen.number)
            if status is None:
                logger.warning(
                    "study %s: Optuna trial %s has no job; failing it", self.study.pk, frozen.number
                )
                self.optuna.finish(frozen.number, "failed")
            elif status != Trial.Status.RUNNING:
                self.optuna.finish(frozen.number, OPTUNA_STATUS[status], values.get(frozen.number))

    def _close(self, trial: Trial, status: str, value: float | None = None) -> None:
        """Move a running trial to a final status, then tell Optuna (reconciled if this dies between)."""
        fields: dict[str, Any] = {"status": status, "finished_at": timezone.now()}
        if value is not None:
            fields["value"] = value
        if Trial.objects.filter(pk=trial.pk, status=Trial.Status.RUNNING).update(**fields):
            self.optuna.finish(trial.optuna_number, OPTUNA_STATUS[status], value)

    def _finish_job(
        self, status: str, *, error: str = "", results: dict[str, float | None] | None = None
    ) -> None:
        with transaction.atomic():
            jobs.job_finish(job_id=self.job.pk, status=status, error=error, results=results)

    def _finish_study(self, status: str, *, error: str = "") -> None:
        Study.objects.filter(pk=self.study.pk, status__in=Study.ACTIVE_STATUSES).update(
            status=status, finished_at=timezone.now(), error=error
        )
        self.study.refresh_from_db()

    # -- the steps ----------------------------------------------------------------------------

    def _cancel(self) -> None:
        still_running = False
        for trial in self.study.trials.filter(status=Trial.Status.RUNNING).select_related("job"):
            if trial.job.is_active:
                jobs.job_cancel(job=trial.job)
                still_running = True
            else:
                self._close(trial, Trial.Status.CANCELLED)
        final = self.study.final_job
        if final is not None and final.is_active:
            jobs.job_cancel(job=final)
            still_running = True
        if still_running:
            return  # their ends are events that tick again
        self._finish_study(Study.Status.CANCELLED)
        self._finish_job(Job.Status.CANCELLED)

    def _follow_trials(self) -> None:
        for trial in self.study.trials.filter(status=Trial.Status.RUNNING).select_related("job"):
            job = trial.job
            job.refresh_from_db()  # the job's status first: its last round is committed with it
            if self._report_rounds(trial, job) or job.is_active:
                continue
            trial.refresh_from_db()
            if job.status == Job.Status.SUCCEEDED and trial.reported_round >= job.rounds_total:
                self._close(trial, Trial.Status.COMPLETE, trial.value)
            elif job.status == Job.Status.SUCCEEDED:
                self._close(trial, Trial.Status.FAILED)  # a round without a validation figure
            elif job.status == Job.Status.FAILED:
                self._close(trial, Trial.Status.FAILED)
            else:
                self._close(trial, Trial.Status.CANCELLED)

    def _report_rounds(self, trial: Trial, job: Job) -> bool:
        """Report newly completed rounds; True when the trial was pruned or failed on the way."""
        rounds = Round.objects.filter(
            job=job, status=Round.Status.COMPLETED, number__gt=trial.reported_round
        ).order_by("number")
        for round_ in rounds:
            value = objective_value(round_.metrics, self.objective)
            if value is None:
                jobs.job_cancel(job=job)
                self._close(trial, Trial.Status.FAILED)
                return True
            Trial.objects.filter(pk=trial.pk, status=Trial.Status.RUNNING).update(
                reported_round=round_.number, value=value
            )
            trial.reported_round, trial.value = round_.number, value
            if (
                self.optuna.report(trial.optuna_number, round_.number, value)
                and round_.number < job.rounds_total
            ):
                jobs.job_cancel(job=job)
                self._close(trial, Trial.Status.PRUNED, value)
                return True
        return False

    def _launch_trials(self) -> None:
        llm = configured_llm_proposer(self.space)
        started = Trial.objects.filter(study=self.study).count()
        running = Trial.objects.filter(study=self.study, status=Trial.Status.RUNNING).count()
        while started < self.study.trials_total and running < self.study.parallel_trials:
            history = trial_records(self.study) if llm is not None else []
            proposal = next_proposal(self.optuna, llm, self.base, history)
            assert proposal.key is not None
            spec = trial_spec(proposal.spec, validation_fraction=VALIDATION_FRACTION)
            spec = spec.model_copy(update={"name": f"{self.job.display_name} · trial {started}"})
            try:
                with transaction.atomic():
                    trial_job = jobs.job_create(owner=self.job.owner, spec=spec, admit=False)
                    Trial.objects.create(
                        study=self.study,
                        number=started,
                        optuna_number=proposal.key,
                        job=trial_job,
                        source=proposal.source,
                        reason=proposal.reason,
                    )
            except SpecRejected as rejected:
                self.optuna.finish(proposal.key, "failed")
                self._fail(f"trial {started} was refused: {rejected}")
                return
            started += 1
            running += 1

    def _evaluate_best(self) -> None:
        trials = list(self.study.trials.select_related("job"))
        if len(trials) < self.study.trials_total or any(t.status == Trial.Status.RUNNING for t in trials):
            return
        best = best_trial_row(trials, self.objective)
        if best is None:
            self._fail(f"none of the {len(trials)} trials completed (they failed, were pruned or cancelled)")
            return
        spec = best_spec(best, self.base)
        final_spec = spec.model_copy(update={"name": f"{self.job.display_name} · best spec"})
        try:
            with transaction.atomic():
                final = jobs.job_create(owner=self.job.owner, spec=final_spec, admit=False)
                Study.objects.filter(pk=self.study.pk, status=Study.Status.RUNNING).update(
                    status=Study.Status.EVALUATING, best_trial=best, final_job=final
                )
        except SpecRejected as rejected:
            self._fail(f"the best spec was refused: {rejected}")
            return
        self.study.refresh_from_db()

    def _finish(self) -> None:
        final = self.study.final_job
        if final is None or final.is_active:
            return
        if final.status == Job.Status.SUCCEEDED:
            self._finish_study(Study.Status.SUCCEEDED)
            self._finish_job(
                Job.Status.SUCCEEDED,
                results={
                    "final_accuracy": final.final_accuracy,
                    "final_loss": final.final_loss,
                    "best_accuracy": final.final_accuracy,
                },
            )
        else:
            self._fail(
                f"the run of the best spec (job {final.pk}) ended {final.status}: {final.error}".strip(": ")
            )

    def _fail(self, error: str) -> None:
        self._finish_study(Study.Status.FAILED, error=error)
        self._finish_job(Job.Status.FAILED, error=error)


def study_tick_request(*, study_id: int) -> None:
    _common.send_task(STUDY_TICK_TASK, study_id)
