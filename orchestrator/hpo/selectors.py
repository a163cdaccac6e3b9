"""Reads for the study page, the job page's HPO panel and the REST API, and the read models
the HPO services hand their proposers (a job's rounds, a study's trials)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from jobspec import JobSpec, spec_diff
from orchestrator.fl.records import CORE_FIGURES
from orchestrator.models import ClientUpdate, Job, JobSuggestions, Round, Study, Trial

from .records import ClientPoint, RoundPoint, TrialRecord, TrialStatus
from .space import trial_spec
from .study import better

# Fields every trial sets for itself: not part of what it proposes.
TRIAL_BOOKKEEPING = ("name", "validation_fraction")


def study_for_job_id(job_id: int) -> int | None:
    """The study a job belongs to: as its HPO job, one of its trials, or its best-spec run."""
    found = (
        Study.objects.filter(Q(job_id=job_id) | Q(final_job_id=job_id) | Q(trials__job_id=job_id))
        .values_list("pk", flat=True)
        .first()
    )
    return int(found) if found is not None else None


def best_trial_row(trials: list[Trial], objective: str) -> Trial | None:
    best: Trial | None = None
    for trial in trials:
        if trial.status != Trial.Status.COMPLETE or trial.value is None:
            continue
        if best is None or better(trial.value, best.value or 0.0, objective):
            best = trial
    return best


def best_spec(trial: Trial, base: JobSpec) -> JobSpec:
    """A trial's spec as the plain job it proposes: the base's name and validation setting."""
    data = JobSpec.model_validate(trial.job.spec).model_dump(mode="json")
    data["name"] = base.name
    return trial_spec(JobSpec.model_validate(data), validation_fraction=base.validation_fraction)


def studies_for_user(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Study]:
    if not user.is_authenticated:
        return Study.objects.none()
    return Study.objects.filter(job__owner_id=user.pk).select_related("job", "final_job")


def study_for_user(*, user: AbstractBaseUser | AnonymousUser, study_id: int) -> Study | None:
    return studies_for_user(user=user).filter(pk=study_id).first()


def proposed_changes(base: JobSpec, spec: JobSpec) -> list[tuple[str, Any, Any]]:
    """(field, base value, proposed value) for what a spec changes, without trial bookkeeping."""
    return [
        (name, old, new)
        for name, (old, new) in spec_diff(base, spec).items()
        if name not in TRIAL_BOOKKEEPING and not name.startswith("hpo.")
    ]


@dataclass
class TrialView:
    trial: Trial
    changes: list[tuple[str, Any, Any]]
    curve: list[float | None]  # the validation objective per completed round

    @property
    def rounds_run(self) -> int:
        return len(self.curve)

    def as_dict(self) -> dict[str, Any]:
        trial = self.trial
        return {
            "number": trial.number,
            "status": trial.status,
            "proposed_by": trial.source,
            "reason": trial.reason,
            "job_id": trial.job_id,
            "value": trial.value,
            "rounds_run": self.rounds_run,
            "rounds_total": trial.job.rounds_total,
            "changes": [{"field": name, "from": old, "to": new} for name, old, new in self.changes],
            "curve": self.curve,
        }


@dataclass
class StudyView:
    study: Study
    base: JobSpec
    trials: list[TrialView]
    best: TrialView | None
    best_spec: JobSpec | None
    best_so_far: list[dict[str, Any]] = field(default_factory=list)

    @property
    def objective(self) -> str:
        return self.base.hpo.objective

    @property
    def trials_finished(self) -> int:
        return sum(1 for view in self.trials if view.trial.status != Trial.Status.RUNNING)

    @property
    def trials_running(self) -> int:
        return sum(1 for view in self.trials if view.trial.status == Trial.Status.RUNNING)

    def chart_data(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "trials": [
                {"number": v.trial.number, "status": v.trial.status, "curve": v.curve} for v in self.trials
            ],
            "best_so_far": self.best_so_far,
        }

    def as_dict(self) -> dict[str, Any]:
        study, final = self.study, self.study.final_job
        return {
            "id": study.pk,
            "job_id": study.job_id,
            "status": study.status,
            "error": study.error,
            "objective": self.objective,
            "trials_total": study.trials_total,
            "parallel_trials": study.parallel_trials,
            "trials_finished": self.trials_finished,
            "base_spec": self.base.model_dump(mode="json"),
            "best_trial": self.best.trial.number if self.best else None,
            "best_spec": self.best_spec.model_dump(mode="json") if self.best_spec else None,
            "best_changes": [{"field": n, "from": o, "to": v} for n, o, v in self.best.changes]
            if self.best
            else [],
            "final_job_id": final.pk if final else None,
            "test_accuracy": final.final_accuracy if final and final.status == Job.Status.SUCCEEDED else None,
            "test_loss": final.final_loss if final and final.status == Job.Status.SUCCEEDED else None,
            "best_so_far": self.best_so_far,
            "trials": [view.as_dict() for view in self.trials],
            "created_at": study.created_at.isoformat(),
            "finished_at": study.finished_at.isoformat() if study.finished_at else None,
        }


def study_view(*, study: Study) -> StudyView:
    """The study with each trial's changes, validation curve, the best so far and the best spec."""
    base = JobSpec.model_validate(study.job.spec)
    objective = base.hpo.objective
    key = "val_accuracy" if objective == "accuracy" else "val_loss"
    trials = list(study.trials.select_related("job").order_by("number"))
    curves: dict[int, list[float | None]] = {trial.job_id: [] for trial in trials}
    rounds = Round.objects.filter(job_id__in=curves, status=Round.Status.COMPLETED).order_by(
        "job_id", "number"
    )
    for round_ in rounds.only("job_id", "metrics"):
        value = (round_.metrics or {}).get(key)
        curves[round_.job_id].append(
            float(value) if isinstance(value, int | float) and math.isfinite(value) else None
        )
    views = [
        TrialView(trial, proposed_changes(base, JobSpec.model_validate(trial.job.spec)), curves[trial.job_id])
        for trial in trials
    ]
    best_row = best_trial_row(trials, objective)
    best = next((view for view in views if best_row is not None and view.trial.pk == best_row.pk), None)
    return StudyView(
        study=study,
        base=base,
        trials=views,
        best=best,
        best_spec=best_spec(best_row, base) if best_row is not None else None,
        best_so_far=best_so_far(trials, objective),
    )


def best_so_far(trials: list[Trial], objective: str) -> list[dict[str, Any]]:
    """After each completed trial (in trial order): its value and the best value so far."""
    points: list[dict[str, Any]] = []
    best: float | None = None
    for trial in trials:
        if trial.status != Trial.Status.COMPLETE or trial.value is None:
            continue
        if best is None or better(trial.value, best, objective):
            best = trial.value
        points.append({"trial": trial.number, "value": trial.value, "best": best})
    return points


# --- the job page's HPO panel ------------------------------------------------------------------


@dataclass
class SuggestionView:
    rank: int
    spec: dict[str, Any]
    reason: str
    source: str
    changes: list[tuple[str, Any, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "reason": self.reason,
            "proposed_by": self.source,
            "changes": [{"field": name, "from": old, "to": new} for name, old, new in self.changes],
            "spec": self.spec,
        }


def job_suggestions(*, job: Job) -> list[SuggestionView] | None:
    """The job's suggestions, or None while they have not been computed."""
    stored = JobSuggestions.objects.filter(job=job).first()
    if stored is None:
        return None
    base = JobSpec.model_validate(job.spec)
    return [
        SuggestionView(
            rank,
            item["spec"],
            item["reason"],
            item["source"],
            proposed_changes(base, JobSpec.model_validate(item["spec"])),
        )
        for rank, item in enumerate(stored.items)
    ]


@dataclass
class JobPanel:
    """What the job page shows below the rounds: the job's study role, or suggestions."""

    job: Job
    study: Study | None
    role: str  # "hpo" (the HPO job), "trial", "final" (the best spec's run) or "plain"
    trial: Trial | None
    suggestions: list[SuggestionView] | None  # None: not computed (yet)

    @property
    def suggestions_due(self) -> bool:
        """A plain job that ended with rounds but whose suggestions are not computed yet."""
        return (
            self.role == "plain"
            and self.suggestions is None
            and self.job.status in (Job.Status.SUCCEEDED, Job.Status.CANCELLED)
            and self.job.current_round > 0
        )

    @property
    def waiting(self) -> bool:
        """Whether the panel will change: a running study, a running job, or suggestions due."""
        if self.study is not None:
            return self.study.is_active
        return self.job.is_active or self.suggestions_due


def job_panel(*, job: Job) -> JobPanel:
    study_id = study_for_job_id(job.pk)
    study = Study.objects.filter(pk=study_id).select_related("job", "final_job").first() if study_id else None
    trial = Trial.objects.filter(job=job).first()
    if study is None:
        role = "plain"
    elif study.job_id == job.pk:
        role = "hpo"
    elif trial is not None:
        role = "trial"
    else:
        role = "final"
    return JobPanel(job, study, role, trial, job_suggestions(job=job) if role == "plain" else None)


# --- what the proposers read: rounds and trials as records ----------------------------------------

# How a trial row's status is told to Optuna (a trial cancelled by its owner counts as failed).
OPTUNA_STATUS: dict[str, TrialStatus] = {
    Trial.Status.COMPLETE: "complete",
    Trial.Status.PRUNED: "pruned",
    Trial.Status.FAILED: "failed",
    Trial.Status.CANCELLED: "failed",
}


def objective_value(metrics: dict[str, Any], objective: str) -> float | None:
    value = metrics.get("val_accuracy" if objective == "accuracy" else "val_loss")
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


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
