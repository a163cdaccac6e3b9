"""A study run in this process: no database, broker or workers (Optuna in memory).

The base spec is tried first, then TPE samples (and, when a language model is
configured, its proposals in turn). Every trial is an ordinary job on a
validation split carved from the clients' training data; it reports its
validation figure after each round and the pruner may stop it. The best trial's
spec is then run once more as a plain job (the base's validation setting, the
full rounds) and its *test* accuracy is the study's result, exactly what
`python -m orchestrator run` prints for that spec.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from jobspec import JobSpec
from orchestrator.fl.simulation import InProcessJob

from .records import Proposal, Proposer, RoundPoint, TrialRecord
from .space import search_space, trial_spec
from .tpe import OptunaProposer, create_study, storage_for

# The share of each client's training data trials hold out to compare on.
VALIDATION_FRACTION = 0.1
BASE_REASON = "the starting spec"
# With a language model, it proposes every LLM_EVERY-th trial once this many trials have finished.
LLM_EVERY = 2
LLM_AFTER = 2

ReportRound = Callable[[int, float], bool]


@dataclass
class StudyResult:
    trials: list[TrialRecord]
    best: TrialRecord
    spec: JobSpec  # the best spec as a plain job
    accuracy: float  # its test accuracy
    loss: float
    wall_s: float


class NoCompletedTrial(RuntimeError):
    """Every trial failed or was pruned, so there is no best spec."""


def next_proposal(
    optuna: OptunaProposer, llm: Proposer | None, base: JobSpec, history: list[TrialRecord]
) -> Proposal:
    """The next trial's proposal, tracked as an Optuna trial: the language model's in turn, else TPE's."""
    started = len(history)
    if llm is not None and started >= LLM_AFTER and started % LLM_EVERY == 0:
        for proposal in llm.propose(base, history, 1):
            if not optuna.enqueue(proposal):
                return optuna.register(proposal)
    return optuna.propose(base, history, 1)[0]


def run_trial(spec: JobSpec, *, objective: str, report: ReportRound) -> tuple[list[RoundPoint], bool]:
    """Run one trial job; `report(round, value)` returns True to stop it. Returns (rounds, pruned)."""
    rounds: list[RoundPoint] = []
    for summary in InProcessJob(spec):
        point = RoundPoint.from_summary(summary)
        rounds.append(point)
        value = point.objective_value(objective)
        if value is None:
            raise FloatingPointError(f"round {point.round}: validation {objective} is not a finite number")
        if report(point.round, value) and point.round < spec.rounds:
            return rounds, True
    return rounds, False


def final_value(rounds: list[RoundPoint], objective: str) -> float | None:
    return rounds[-1].objective_value(objective) if rounds else None


def better(a: float, b: float, objective: str) -> bool:
    return a > b if objective == "accuracy" else a < b


def best_trial(records: list[TrialRecord], objective: str) -> TrialRecord | None:
    best: TrialRecord | None = None
    for record in records:
        if record.status != "complete" or record.value is None:
            continue
        if best is None or better(record.value, best.value or 0.0, objective):
            best = record
    return best


class InProcessStudy:
    """Run `trials` trials around `base` (its `hpo.fixed` pinned), then the best spec for its test figure.

    The base spec is the first trial; proposals enqueued on `optuna` before `run` follow it.
    """

    def __init__(self, base: JobSpec, *, trials: int, llm: Proposer | None = None) -> None:
        self.base = base.model_copy(update={"hpo": base.hpo.model_copy(update={"trials": trials})})
        self.trials = trials
        self.objective = base.hpo.objective
        self.space = search_space(self.base)
        storage = storage_for(None)
        self.optuna = OptunaProposer(self.space, create_study(self.base, storage=storage), storage)
        self.llm = llm
        self.records: list[TrialRecord] = []
        self.optuna.enqueue(Proposal(spec=self.base, reason=BASE_REASON, source="base"))

    def run(self, on_trial: Callable[[TrialRecord], None] | None = None) -> StudyResult:
        started = time.perf_counter()
        for _ in range(self.trials):
            record = self.run_one(self.next_proposal())
            self.records.append(record)
            if on_trial is not None:
                on_trial(record)
        best = best_trial(self.records, self.objective)
        if best is None:
            raise NoCompletedTrial(f"none of the {self.trials} trials completed")
        spec = trial_spec(best.spec, validation_fraction=self.base.validation_fraction)
        accuracy = loss = math.nan
        for summary in InProcessJob(spec):
            accuracy, loss = summary.accuracy, summary.loss
        return StudyResult(self.records, best, spec, accuracy, loss, time.perf_counter() - started)

    def next_proposal(self) -> Proposal:
        return next_proposal(self.optuna, self.llm, self.base, self.records)

    def run_one(self, proposal: Proposal) -> TrialRecord:
        assert proposal.key is not None
        key = proposal.key
        spec = trial_spec(proposal.spec, validation_fraction=VALIDATION_FRACTION)
        number = len(self.records)
        record = TrialRecord(number, spec, "running", source=proposal.source, reason=proposal.reason)
        try:
            record.rounds, pruned = run_trial(
                spec,
                objective=self.objective,
                report=lambda server_round, value: self.optuna.report(key, server_round, value),
            )
        except (ValueError, ArithmeticError) as exc:
            record.status, record.error = "failed", str(exc)
            self.optuna.finish(key, "failed")
            return record
        record.value = final_value(record.rounds, self.objective)
        record.status = "pruned" if pruned else "complete"
        self.optuna.finish(key, record.status, record.value)
        return record
