"""HPO on the server: studies whose trials are ordinary jobs on the Celery workers, and
suggestions for finished jobs.

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
import math
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import numpy as np
import optuna
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from jobspec import JobSpec
from orchestrator import services as job_services
from orchestrator.fl.records import CORE_FIGURES
from orchestrator.limits import SpecRejected
from orchestrator.models import ClientUpdate, Job, JobSuggestions, Round, Study, Trial
from orchestrator.queues import STUDY_TICK_TASK, SUGGESTIONS_TASK, task_send

from .diagnostics import suggestions as diagnostic_suggestions
from .llm import LLMProposer, configured_llm_proposer
from .records import ClientPoint, Proposal, RoundPoint, TrialRecord, TrialStatus
from .selectors import best_spec, best_trial_row, study_for_job_id
from .space import search_space, trial_spec
from .study import BASE_REASON, VALIDATION_FRACTION, next_proposal
from .tpe import OptunaProposer, create_study, storage_for

logger = logging.getLogger(__name__)
# Every tick loads the stored study; Optuna would log each load at INFO.
optuna.logging.set_verbosity(optuna.logging.WARNING)

LEASE_S = 60
RETRY_TICK_S = 2.0
MAX_SUGGESTIONS = 3
# How a trial row's status is told to Optuna (a trial cancelled by its owner counts as failed).
OPTUNA_STATUS: dict[str, TrialStatus] = {
    Trial.Status.COMPLETE: "complete",
    Trial.Status.PRUNED: "pruned",
    Trial.Status.FAILED: "failed",
    Trial.Status.CANCELLED: "failed",
}


def _send_task(name: str, *args: int, countdown: float | None = None) -> None:
    task_send(name, *args, countdown=countdown)


def parallel_trials() -> int:
    return max(1, int(settings.FLOTILLA_HPO_PARALLEL_TRIALS))


def optuna_storage_url() -> str:
    """This project's database as an SQLAlchemy URL: Optuna keeps its study tables beside ours."""
    database = connection.settings_dict
    if database["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{database['NAME']}"
    user = quote(str(database["USER"]), safe="")
    password = f":{quote(str(database['PASSWORD']), safe='')}" if database.get("PASSWORD") else ""
    host = database.get("HOST") or "localhost"
    port = f":{database['PORT']}" if database.get("PORT") else ""
    return f"postgresql+psycopg://{user}{password}@{host}{port}/{database['NAME']}"


_STORAGES: dict[str, BaseStorage] = {}


def _storage(url: str) -> BaseStorage:
    """One Optuna storage (and connection pool) per database per process."""
    if url not in _STORAGES:
        _STORAGES[url] = storage_for(url)
    return _STORAGES[url]


def storages_close() -> None:
    """Close Optuna's database connections (before the database is dropped, in tests)."""
    for storage in _STORAGES.values():
        engine = getattr(storage, "engine", None)
        if engine is not None:
            engine.dispose()
    _STORAGES.clear()


# --- studies ---------------------------------------------------------------------------------


def study_create(*, job: Job) -> Study:
    """Make `job` (a spec with hpo.enabled) an HPO job: its study starts once the job row is committed."""
    spec = JobSpec.model_validate(job.spec)
    study = Study.objects.create(
        job=job,
        optuna_name=f"flotilla-job-{job.pk}-{timezone.now():%Y%m%d%H%M%S%f}",
        trials_total=spec.hpo.trials,
        parallel_trials=min(spec.hpo.trials, parallel_trials()),
    )
    transaction.on_commit(lambda: _send_task(STUDY_TICK_TASK, study.pk))
    return study


def study_cancel(*, study: Study) -> Study:
    """Cancel the HPO job: its running trials stop after their current round."""
    job_services.job_cancel(job=study.job)
    _send_task(STUDY_TICK_TASK, study.pk)
    study.refresh_from_db()
    return study


def studies_resume() -> int:
    """Tick every active study (a worker started: pick up whatever was left mid-study)."""
    ids = list(Study.objects.filter(status__in=Study.ACTIVE_STATUSES).values_list("pk", flat=True))
    for study_id in ids:
        _send_task(STUDY_TICK_TASK, study_id)
    return len(ids)


def study_tick(*, study_id: int) -> None:
    """One idempotent step of a study (see the module docstring); retried later if another holds it."""
    now = timezone.now()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    active = Study.objects.filter(pk=study_id, status__in=Study.ACTIVE_STATUSES)
    if not active.filter(free).update(lease_until=now + timedelta(seconds=LEASE_S)):
        if active.exists():
            # Another tick is working on it and may have read the rows before this event: look again.
            _send_task(STUDY_TICK_TASK, study_id, countdown=RETRY_TICK_S)
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
            job_services.job_mark_running(job_id=self.job.pk)

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
            job_services.job_finish(job_id=self.job.pk, status=status, error=error, results=results)

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
                job_services.job_cancel(job=trial.job)
                still_running = True
            else:
                self._close(trial, Trial.Status.CANCELLED)
        final = self.study.final_job
        if final is not None and final.is_active:
            job_services.job_cancel(job=final)
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
                job_services.job_cancel(job=job)
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
                job_services.job_cancel(job=job)
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
                    trial_job = job_services.job_create(owner=self.job.owner, spec=spec, admit=False)
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
                final = job_services.job_create(owner=self.job.owner, spec=final_spec, admit=False)
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


def objective_value(metrics: dict[str, Any], objective: str) -> float | None:
    value = metrics.get("val_accuracy" if objective == "accuracy" else "val_loss")
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


# --- curves ----------------------------------------------------------------------------------


def round_points(job: Job) -> list[RoundPoint]:
    """A job's completed rounds with their clients, as proposers read them."""
    rounds = list(job.rounds.filter(status=Round.Status.COMPLETED).order_by("number"))
    clients: dict[int, list[ClientPoint]] = {}
    updates = ClientUpdate.objects.filter(round__in=rounds, status=ClientUpdate.Status.DONE).order_by(
        "client_id"
    )
    for update in updates:
        duration = (update.metrics or {}).get("sim_duration_s")
        clients.setdefault(update.round_id, []).append(
            ClientPoint(
                client_id=update.client_id,
                train_loss=update.train_loss if update.train_loss is not None else math.nan,
                bytes_up=update.bytes_up,
                bytes_down=update.bytes_down,
                cpu_s=update.cpu_s,
                sim_duration_s=None if duration is None else float(duration),
            )
        )
    points = []
    for round_ in rounds:
        line = {
            "round": round_.number,
            **{name: getattr(round_, name) for name in CORE_FIGURES},
            "accuracy": round_.accuracy if round_.accuracy is not None else math.nan,
            "loss": round_.loss if round_.loss is not None else math.nan,
            **{k: v for k, v in (round_.metrics or {}).items() if v is not None},
        }
        points.append(RoundPoint.from_line(line, clients=clients.get(round_.pk, [])))
    return points


def trial_records(study: Study) -> list[TrialRecord]:
    records = []
    for trial in study.trials.select_related("job").order_by("number"):
        status: Any = "running" if trial.status == Trial.Status.RUNNING else OPTUNA_STATUS[trial.status]
        records.append(
            TrialRecord(
                number=trial.number,
                spec=JobSpec.model_validate(trial.job.spec),
                status=status,
                value=trial.value,
                rounds=round_points(trial.job),
                source=trial.source,
                reason=trial.reason,
            )
        )
    return records


# --- suggestions -------------------------------------------------------------------------------


def wants_suggestions(job: Job) -> bool:
    """Plain jobs get suggestions; the jobs of a study (HPO job, trials, best-spec run) do not."""
    return study_for_job_id(job.pk) is None and not JobSpec.model_validate(job.spec).hpo.enabled


def job_suggestions_create(*, job_id: int) -> JobSuggestions | None:
    """Up to three changed specs for a finished job (diagnostics first, then the language model's),
    computed once; None for a job that gets none (still running, failed, or part of a study)."""
    job = Job.objects.filter(pk=job_id, status__in=(Job.Status.SUCCEEDED, Job.Status.CANCELLED)).first()
    if job is None or not wants_suggestions(job):
        return None
    existing = JobSuggestions.objects.filter(job=job).first()
    if existing is not None:
        return existing
    spec = JobSpec.model_validate(job.spec)
    rounds = round_points(job)
    proposals = diagnostic_suggestions(spec, rounds, MAX_SUGGESTIONS) if rounds else []
    warnings: list[str] = []
    llm: LLMProposer | None = configured_llm_proposer(search_space(spec)) if rounds else None
    if llm is not None and len(proposals) < MAX_SUGGESTIONS:
        record = TrialRecord(0, spec, "complete", rounds=rounds)
        proposals += llm.propose(spec, [record], MAX_SUGGESTIONS - len(proposals))
        warnings = llm.warnings
    items = [
        {"spec": p.spec.model_dump(mode="json"), "reason": p.reason, "source": p.source}
        for p in proposals[:MAX_SUGGESTIONS]
    ]
    suggestions, _ = JobSuggestions.objects.get_or_create(
        job=job, defaults={"items": items, "warnings": warnings}
    )
    return suggestions


def study_tick_request(*, study_id: int) -> None:
    _send_task(STUDY_TICK_TASK, study_id)


def job_suggestions_request(*, job_id: int) -> None:
    _send_task(SUGGESTIONS_TASK, job_id)
