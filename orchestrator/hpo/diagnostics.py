"""The diagnostics proposer: reads a finished job's curves and proposes targeted changes.

Each rule looks for one pathology in the per-round figures and names a change
that addresses it, with a one-line reason quoting the figures it saw:

- diverging: non-finite losses, clients' training loss far above chance
  (exploding local steps), an accuracy collapse or repeated accuracy drops
  -> a smaller client learning rate;
- flat: the loss stays near chance and barely falls -> a larger learning rate
  (or more local work when it is already large);
- client drift: on label-skewed data the clients fit their own data far better
  than the global model fits the test set -> FedProx's proximal term (stronger
  if already on), or fewer local epochs;
- overfitting: the global loss climbs back while accuracy holds -> less local
  work, or fewer rounds;
- communication-bound: uploading an update takes longer than computing it on a
  typical edge uplink -> compress updates (or more local work per upload).

Rules run in that order of severity; a rule whose change `hpo.fixed` pins falls
back to its next alternative. The figures are the job's own curves (validation
when the job held a split out, otherwise test: suggestions advise a person,
they do not select among trials).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from jobspec import JobSpec, spec_diff
from jobspec.catalogue import CATALOGUE
from orchestrator.fl.profiles import client_profile, transfer_seconds
from orchestrator.fl.strategies import STRATEGIES

from .records import ClientPoint, Proposal, RoundPoint, TrialRecord
from .space import LEARNING_RATE_RANGES, MAX_LOCAL_EPOCHS, apply_changes, is_pinned

SOURCE = "diagnostics"
MAX_SUGGESTIONS = 3
# Thresholds, as fractions of the chance-level loss ln(classes) or of the curves themselves.
EXPLODING_TRAIN_LOSS = 2.0  # x chance
FLAT_LOSS_LEVEL = 0.6  # x chance: above this the model has barely learned
FLAT_RELATIVE_DROP = 0.3  # loss fell by less than this share over the run
ACCURACY_COLLAPSE = 0.1
ACCURACY_DROP = 0.05
DRIFT_LOSS_RATIO = 2.0  # global loss / clients' training loss
DRIFT_MIN_LOSS = 0.3
DRIFT_MAX_ALPHA = 1.0
OVERFIT_LOSS_RISE = 1.3  # final loss / lowest loss
OVERFIT_ACCURACY_HOLD = 0.03
# A typical edge client's uplink, for jobs whose records carry no simulated transfer time.
REFERENCE_UPLINK_BYTES_PER_S = 10e6 / 8
COMMUNICATION_SHARE = 0.5  # of the clients' round time spent transferring
LEARNING_RATE_DOWN = 0.2
LEARNING_RATE_UP = 10.0
PROXIMAL_MU = 0.1
MAX_PROXIMAL_MU = 1.0
TOPK_RATIO = 0.1
MIN_TOPK_RATIO = 0.01

Changes = dict[str, Any]


@dataclass
class Finding:
    """One diagnosed pathology: the reason, and changes to try in order of preference."""

    rule: str
    reason: str
    alternatives: list[Changes] = field(default_factory=list)


@dataclass(frozen=True)
class Curves:
    """The figures the rules read, taken from the job's rounds."""

    spec: JobSpec
    rounds: Sequence[RoundPoint]
    chance_loss: float

    @property
    def losses(self) -> list[float]:
        return [p.val_loss if p.val_loss is not None else p.loss for p in self.rounds]

    @property
    def accuracies(self) -> list[float]:
        return [p.val_accuracy if p.val_accuracy is not None else p.accuracy for p in self.rounds]

    @property
    def split(self) -> str:
        return "validation" if self.rounds[-1].val_loss is not None else "test"


def diagnose(spec: JobSpec, rounds: Sequence[RoundPoint]) -> list[Finding]:
    """Every pathology the rules see in a job's curves, most severe first."""
    if not rounds:
        return []
    classes = CATALOGUE[spec.dataset].classes
    chance = math.log(classes) if classes else max(rounds[0].loss, 1e-9)
    curves = Curves(spec, rounds, chance)
    findings: list[Finding] = []
    for rule in RULES:
        finding = rule(curves)
        if finding is not None:
            findings.append(finding)
    if any(f.rule == "diverging" for f in findings):
        # A diverging job's loss says nothing about speed, fit or overfitting.
        findings = [f for f in findings if f.rule in ("diverging", "communication_bound")]
    return findings


def suggestions(spec: JobSpec, rounds: Sequence[RoundPoint], count: int = MAX_SUGGESTIONS) -> list[Proposal]:
    """Up to `count` valid changed specs, taking each finding's next usable change in turn."""
    findings = diagnose(spec, rounds)
    queues = [list(finding.alternatives) for finding in findings]
    proposals: list[Proposal] = []
    seen: list[JobSpec] = [spec]
    while len(proposals) < count and any(queues):
        for finding, queue in zip(findings, queues, strict=True):
            while queue and len(proposals) < count:
                candidate = _usable(spec, queue.pop(0), seen)
                if candidate is not None:
                    proposals.append(Proposal(spec=candidate, reason=finding.reason, source=SOURCE))
                    seen.append(candidate)
                    break
    return proposals


class DiagnosticsProposer:
    """Proposes changes to the last record of `history` (a finished job) from its curves."""

    source = SOURCE

    def propose(self, base: JobSpec, history: Sequence[TrialRecord], count: int) -> list[Proposal]:
        if not history:
            return []
        return suggestions(base, history[-1].rounds, count)


def _usable(spec: JobSpec, changes: Changes, seen: list[JobSpec]) -> JobSpec | None:
    if any(is_pinned(name, spec.hpo.fixed) for name in changes):
        return None
    if "algorithm" in changes and changes["algorithm"] not in STRATEGIES:
        return None
    try:
        candidate = apply_changes(spec, changes)
    except ValidationError:
        return None
    if any(not spec_diff(candidate, other) for other in seen):
        return None
    return candidate


# --- the rules ----------------------------------------------------------------------------


def diverging(c: Curves) -> Finding | None:
    spec, rounds, losses, accuracies = c.spec, c.rounds, c.losses, c.accuracies
    train_losses = [loss for p in rounds for loss in p.client_train_losses]
    if not all(math.isfinite(x) for x in losses + train_losses):
        reason = "the loss became infinite or NaN: training diverged"
    elif train_losses and max(train_losses) > EXPLODING_TRAIN_LOSS * c.chance_loss:
        worst = max(rounds, key=lambda p: max(p.client_train_losses, default=0.0))
        reason = (
            f"clients' training loss reached {max(worst.client_train_losses):.3g} in round {worst.round} "
            f"(chance is {c.chance_loss:.2f}): local steps explode"
        )
    elif max(accuracies) - accuracies[-1] >= ACCURACY_COLLAPSE and losses[-1] > 1.2 * min(losses):
        reason = (
            f"{c.split} accuracy collapsed from {max(accuracies):.2f} to {accuracies[-1]:.2f} "
            f"while the loss rose to {losses[-1]:.2f}: the step size is too large"
        )
    else:
        drops = [b - a for a, b in zip(accuracies, accuracies[1:], strict=False) if a - b >= ACCURACY_DROP]
        if len(drops) < 2:
            return None
        reason = (
            f"{c.split} accuracy fell by {ACCURACY_DROP:.0%} or more in {len(drops)} rounds: "
            "the updates overshoot"
        )
    assert spec.learning_rate is not None
    alternatives: list[Changes] = [{"learning_rate": _round(spec.learning_rate * LEARNING_RATE_DOWN)}]
    if spec.server_learning_rate is not None and spec.algorithm not in ("fedavg", "fedprox"):
        alternatives.append({"server_learning_rate": _round(spec.server_learning_rate * LEARNING_RATE_DOWN)})
    alternatives.append({"batch_size": spec.batch_size * 2})
    return Finding("diverging", reason, alternatives)


def flat(c: Curves) -> Finding | None:
    losses = c.losses
    if len(losses) < 2:
        return None
    first, last = losses[0], losses[-1]
    drop = (first - last) / first if first > 0 else 0.0
    if last <= FLAT_LOSS_LEVEL * c.chance_loss or drop >= FLAT_RELATIVE_DROP:
        return None
    spec = c.spec
    assert spec.learning_rate is not None
    reason = (
        f"{c.split} loss fell only {max(drop, 0.0):.0%} in {len(losses)} rounds ({first:.2f} -> {last:.2f}, "
        f"chance {c.chance_loss:.2f}): learning is too slow"
    )
    ceiling = _learning_rate_ceiling(spec)
    raised = min(spec.learning_rate * LEARNING_RATE_UP, ceiling)
    alternatives: list[Changes] = []
    if raised > spec.learning_rate * 1.5:
        alternatives.append({"learning_rate": _round(raised)})
    if spec.local_epochs < MAX_LOCAL_EPOCHS:
        alternatives.append({"local_epochs": min(spec.local_epochs * 2, MAX_LOCAL_EPOCHS)})
    alternatives.append({"rounds": spec.rounds * 2})
    return Finding("flat", reason, alternatives)


def client_drift(c: Curves) -> Finding | None:
    spec, last = c.spec, c.rounds[-1]
    partition = spec.partition
    skewed = partition.scheme == "shards" or (
        partition.scheme == "dirichlet" and (partition.alpha or 0) <= DRIFT_MAX_ALPHA
    )
    client_loss = last.mean_client_train_loss
    global_loss = c.losses[-1]
    if not skewed or client_loss is None or global_loss < DRIFT_MIN_LOSS:
        return None
    if global_loss < DRIFT_LOSS_RATIO * client_loss:
        return None
    skew = "shards" if partition.scheme == "shards" else f"dirichlet alpha={partition.alpha:g}"
    reason = (
        f"on label-skewed data ({skew}) clients fit their own data (training loss {client_loss:.2f}) far "
        f"better than the global model fits the {c.split} set (loss {global_loss:.2f}): client drift"
    )
    alternatives: list[Changes] = []
    if spec.algorithm == "fedprox":
        mu = spec.proximal_mu or 0.0
        if mu < MAX_PROXIMAL_MU:
            alternatives.append({"proximal_mu": _round(min(max(mu * 10, PROXIMAL_MU), MAX_PROXIMAL_MU))})
    elif spec.algorithm in ("fedavg", "fedavgm"):
        alternatives.append({"algorithm": "fedprox", "proximal_mu": PROXIMAL_MU})
    if spec.local_epochs > 1:
        alternatives.append({"local_epochs": max(1, spec.local_epochs // 2)})
    if spec.algorithm in ("fedavg", "fedprox"):
        alternatives.append({"algorithm": "scaffold"})
    return Finding("client_drift", reason, alternatives)


def overfitting(c: Curves) -> Finding | None:
    losses, accuracies = c.losses, c.accuracies
    best_round = min(range(len(losses)), key=losses.__getitem__)
    if best_round >= len(losses) - 1 or losses[-1] < OVERFIT_LOSS_RISE * losses[best_round]:
        return None
    if accuracies[-1] < max(accuracies) - OVERFIT_ACCURACY_HOLD:
        return None
    spec = c.spec
    reason = (
        f"{c.split} loss rose from {losses[best_round]:.2f} (round {c.rounds[best_round].round}) to "
        f"{losses[-1]:.2f} while accuracy held at {accuracies[-1]:.2f}: the model overfits"
    )
    alternatives: list[Changes] = []
    if spec.local_epochs > 1:
        alternatives.append({"local_epochs": max(1, spec.local_epochs // 2)})
    alternatives.append({"rounds": c.rounds[best_round].round})
    return Finding("overfitting", reason, alternatives)


def communication_bound(c: Curves) -> Finding | None:
    # The first round carries one-off start-up costs: judge the rest when there is one.
    rounds = list(c.rounds[1:]) or list(c.rounds)
    clients = [client for p in rounds for client in p.clients]
    if not clients:
        return None
    transfer_s, compute_s = _time_split(c.spec, clients)
    share = transfer_s / max(transfer_s + compute_s, 1e-12)
    if share <= COMMUNICATION_SHARE:
        return None
    spec = c.spec
    upload_kb = sum(client.bytes_up for client in clients) / len(clients) / 1e3
    reason = (
        f"clients spend {share:.0%} of their round time transferring ({upload_kb:.1f} kB uploaded per "
        "client per round): rounds are communication-bound"
    )
    method = spec.compression.method
    alternatives: list[Changes] = []
    if method == "none":
        alternatives.append({"compression.method": "topk", "compression.ratio": TOPK_RATIO})
        alternatives.append({"compression.method": "int8"})
    elif method == "topk" and (spec.compression.ratio or 1.0) > MIN_TOPK_RATIO:
        ratio = spec.compression.ratio or 1.0
        alternatives.append({"compression.ratio": _round(max(ratio / 2, MIN_TOPK_RATIO))})
    elif method == "int8":
        alternatives.append({"compression.method": "qsgd", "compression.bits": 4})
    if spec.local_epochs < MAX_LOCAL_EPOCHS:
        alternatives.append({"local_epochs": min(spec.local_epochs * 2, MAX_LOCAL_EPOCHS)})
    return Finding("communication_bound", reason, alternatives) if alternatives else None


def _time_split(spec: JobSpec, clients: Sequence[ClientPoint]) -> tuple[float, float]:
    """(transfer seconds, compute seconds) summed over client rounds.

    With the engine's simulated durations, transfer is the payloads at each client's own
    simulated bandwidths and compute the rest; without them, a reference uplink and real CPU time.
    """
    transfer = compute = 0.0
    for client in clients:
        if client.sim_duration_s is not None:
            profile = client_profile(spec.seed, client.client_id)
            moving = transfer_seconds(profile, bytes_down=client.bytes_down, bytes_up=client.bytes_up)
            transfer += moving
            compute += max(client.sim_duration_s - moving, 0.0)
        else:
            transfer += client.bytes_up / REFERENCE_UPLINK_BYTES_PER_S
            compute += client.cpu_s
    return transfer, compute


RULES: tuple[Callable[[Curves], Finding | None], ...] = (
    diverging,
    flat,
    client_drift,
    overfitting,
    communication_bound,
)


def _learning_rate_ceiling(spec: JobSpec) -> float:
    family = "sgd" if spec.optimizer == "sgd" else "adaptive"
    size = "large" if spec.uses_lora or spec.model == "resnet18" else "small"
    return LEARNING_RATE_RANGES[(family, size)][1] / 3


def _round(value: float) -> float:
    """Two significant digits: suggestions are read by people."""
    return float(f"{value:.2g}")
