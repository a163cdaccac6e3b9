"""What proposers read and write: round curves, trial records and proposals.

Plain data, no Django: the in-process study builds these from the engine's
`RoundSummary`, the web path from its Round rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from jobspec import JobSpec, spec_diff
from orchestrator.fl.records import CORE_FIGURES, ClientReport, RoundSummary

TrialStatus = Literal["running", "complete", "pruned", "failed"]


@dataclass(frozen=True)
class ClientPoint:
    """One client's part in a round. `sim_duration_s` is its simulated download + training + upload."""

    client_id: int
    train_loss: float
    bytes_up: int = 0
    bytes_down: int = 0
    cpu_s: float = 0.0
    sim_duration_s: float | None = None

    @classmethod
    def from_report(cls, report: ClientReport) -> ClientPoint:
        duration = report.metrics.get("sim_duration_s")
        return cls(
            client_id=report.client_id,
            train_loss=report.train_loss,
            bytes_up=report.bytes_up,
            bytes_down=report.bytes_down,
            cpu_s=report.cpu_s,
            sim_duration_s=None if duration is None else float(duration),
        )


@dataclass(frozen=True)
class RoundPoint:
    """One round of a job's curves, as diagnostics and the trial table read them."""

    round: int
    accuracy: float
    loss: float
    val_accuracy: float | None = None
    val_loss: float | None = None
    clients: tuple[ClientPoint, ...] = ()
    bytes_up: int = 0
    bytes_down: int = 0
    client_cpu_s: float = 0.0
    wall_s: float = 0.0
    metrics: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_summary(cls, summary: RoundSummary) -> RoundPoint:
        return cls.from_line(summary.as_line(), clients=[ClientPoint.from_report(c) for c in summary.clients])

    @classmethod
    def from_line(cls, line: Mapping[str, Any], *, clients: Sequence[ClientPoint] = ()) -> RoundPoint:
        """From a round's JSON line (`RoundSummary.as_line()`, or the web's stored metrics)."""
        known = {"round", *CORE_FIGURES}
        return cls(
            round=int(line["round"]),
            accuracy=float(line["accuracy"]),
            loss=float(line["loss"]),
            val_accuracy=_optional_float(line.get("val_accuracy")),
            val_loss=_optional_float(line.get("val_loss")),
            clients=tuple(clients),
            bytes_up=int(line.get("bytes_up", 0)),
            bytes_down=int(line.get("bytes_down", 0)),
            client_cpu_s=float(line.get("client_cpu_s", 0.0)),
            wall_s=float(line.get("wall_s", 0.0)),
            metrics={k: v for k, v in line.items() if k not in known | {"val_accuracy", "val_loss"}},
        )

    def objective_value(self, objective: str) -> float | None:
        """The validation figure trials compare on (None when the round has no validation split)."""
        value = self.val_accuracy if objective == "accuracy" else self.val_loss
        return value if value is not None and math.isfinite(value) else None

    @property
    def client_train_losses(self) -> list[float]:
        return [client.train_loss for client in self.clients]

    @property
    def mean_client_train_loss(self) -> float | None:
        losses = self.client_train_losses
        return sum(losses) / len(losses) if losses else None


@dataclass
class TrialRecord:
    """A trial (or a finished job) with its outcome. `value` is the validation objective."""

    number: int
    spec: JobSpec
    status: TrialStatus
    value: float | None = None
    rounds: list[RoundPoint] = field(default_factory=list)
    source: str = ""
    reason: str = ""
    error: str = ""


@dataclass(frozen=True)
class Proposal:
    """A changed spec, who proposed it and why. `key` is the proposer's handle (an Optuna trial number)."""

    spec: JobSpec
    reason: str
    source: str
    key: int | None = None

    def diff(self, base: JobSpec) -> dict[str, tuple[Any, Any]]:
        return spec_diff(base, self.spec)


class Proposer(Protocol):
    """Anything that proposes changed specs from a base spec and what has been tried so far."""

    source: str

    def propose(self, base: JobSpec, history: Sequence[TrialRecord], count: int) -> list[Proposal]: ...


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
