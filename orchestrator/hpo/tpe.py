"""The Optuna proposer: TPE sampling over the search space, median pruning, study bookkeeping.

The Optuna study is the record of a search: every trial of it, whoever proposed
its spec, is an Optuna trial, so the pruner compares all of them. Storage is
Optuna's in-memory storage for the CLI and an RDB URL (the project's own
database) on the server, where the study survives restarts and every worker
reports into the same study. Trials are addressed by their number, so any
process can report a round or finish a trial.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage
from optuna.trial import TrialState
from pydantic import ValidationError

from jobspec import JobSpec

from .records import Proposal, TrialRecord, TrialStatus
from .space import SearchSpace

SOURCE = "optuna"
SPEC_ATTR = "spec"
REASON_ATTR = "reason"
SOURCE_ATTR = "source"
# Rounds before a trial may be pruned, and trials that must finish before the median means anything.
PRUNE_WARMUP_ROUNDS = 2
PRUNE_STARTUP_TRIALS = 3
MAX_INVALID_SAMPLES = 20
_STATES: dict[TrialStatus, TrialState] = {
    "complete": TrialState.COMPLETE,
    "pruned": TrialState.PRUNED,
    "failed": TrialState.FAIL,
}


def direction_for(objective: str) -> Literal["maximize", "minimize"]:
    return "maximize" if objective == "accuracy" else "minimize"


def startup_trials(trials: int) -> int:
    """Random samples before TPE models the results: a quarter of the budget, at least 2."""
    return max(2, trials // 4)


def storage_for(url: str | None) -> BaseStorage:
    """Optuna's in-memory storage, or its RDB storage at an SQLAlchemy URL."""
    if url is None:
        return optuna.storages.InMemoryStorage()
    return optuna.storages.RDBStorage(url)


def create_study(
    base: JobSpec, *, storage: BaseStorage, study_name: str | None = None, sampler_seed: int | None = None
) -> optuna.Study:
    """Create (or, when `study_name` exists in the storage, load) the Optuna study for `base`'s search.

    A process that loads a stored study to ask one trial passes a `sampler_seed` that differs per
    trial (the base seed and the trial count), or every load would draw the same random sample.
    """
    with warnings.catch_warnings():
        # multivariate/group/constant_liar are flagged experimental; they are what conditional
        # spaces and parallel trials need.
        warnings.simplefilter("ignore", ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            seed=base.seed if sampler_seed is None else sampler_seed,
            n_startup_trials=startup_trials(base.hpo.trials),
            multivariate=True,
            group=True,
            constant_liar=True,
        )
    pruner = optuna.pruners.MedianPruner(
        n_startup_trials=PRUNE_STARTUP_TRIALS, n_warmup_steps=PRUNE_WARMUP_ROUNDS
    )
    return optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction=direction_for(base.hpo.objective),
        sampler=sampler,
        pruner=pruner,
        load_if_exists=study_name is not None,
    )


class OptunaProposer:
    """Proposes TPE samples of the space; tracks every trial of the study, whoever proposed it."""

    source = SOURCE

    def __init__(self, space: SearchSpace, study: optuna.Study, storage: BaseStorage) -> None:
        self.space = space
        self.study = study
        self.storage = storage

    def propose(self, base: JobSpec, history: Sequence[TrialRecord], count: int) -> list[Proposal]:
        """Ask the study for `count` trials (enqueued specs first, then TPE samples)."""
        return [self._ask() for _ in range(count)]

    def _ask(self) -> Proposal:
        for _ in range(MAX_INVALID_SAMPLES):
            trial = self.study.ask()
            params = self.space.sample(trial)
            try:
                spec = self.space.spec_for(params)
            except ValidationError:
                # A combination the spec's cross-field rules refuse: not a point of the space.
                self.study.tell(trial, state=TrialState.FAIL)
                continue
            attrs = trial.user_attrs
            reason = attrs.get(REASON_ATTR) or self._sample_reason(trial.number)
            source = attrs.get(SOURCE_ATTR) or SOURCE
            trial.set_user_attr(SPEC_ATTR, spec.model_dump(mode="json"))
            return Proposal(spec=spec, reason=reason, source=source, key=trial.number)
        raise RuntimeError(f"no valid spec in {MAX_INVALID_SAMPLES} samples of the search space")

    def _sample_reason(self, number: int) -> str:
        finished = len(self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
        if finished < startup_trials(self.space.base.hpo.trials):
            return "random start-up sample of the search space"
        return f"TPE sample modelled on {finished} finished trials"

    def enqueue(self, proposal: Proposal) -> bool:
        """Make another proposer's spec the study's next trial; False when the space cannot express it."""
        params = self.space.params_for(proposal.spec)
        if params is None:
            return False
        self.study.enqueue_trial(
            params, user_attrs={REASON_ATTR: proposal.reason, SOURCE_ATTR: proposal.source}
        )
        return True

    def register(self, proposal: Proposal) -> Proposal:
        """Track a spec outside the space as a trial without parameters (TPE skips it, the pruner does not)."""
        trial = self.study.ask()
        trial.set_user_attr(SPEC_ATTR, proposal.spec.model_dump(mode="json"))
        trial.set_user_attr(REASON_ATTR, proposal.reason)
        trial.set_user_attr(SOURCE_ATTR, proposal.source)
        return Proposal(spec=proposal.spec, reason=proposal.reason, source=proposal.source, key=trial.number)

    def report(self, key: int, server_round: int, value: float) -> bool:
        """Record a trial's validation figure after a round; True when the pruner stops the trial."""
        if not math.isfinite(value):
            return True
        trial = self._trial(key)
        trial.report(value, server_round)
        return trial.should_prune()

    def finish(self, key: int, status: TrialStatus, value: float | None = None) -> None:
        state = _STATES[status]
        values: Any = value if state == TrialState.COMPLETE else None
        self.study.tell(key, values, state=state, skip_if_finished=True)

    def _trial(self, number: int) -> optuna.Trial:
        study_id = self.storage.get_study_id_from_name(self.study.study_name)
        return optuna.Trial(
            self.study, self.storage.get_trial_id_from_study_id_trial_number(study_id, number)
        )
