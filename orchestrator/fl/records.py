"""Plain records passed between the engine's steps (no torch modules, no Django)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

Weights = dict[str, torch.Tensor]


@dataclass
class FitIns:
    """What the server asks one client to do this round."""

    client_id: int
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class FitRes:
    """One client's decoded result, as the server's strategy sees it."""

    client_id: int
    num_examples: int
    train_loss: float
    update: Weights  # local weights minus global weights, after decoding
    extras: Weights = field(default_factory=dict)  # strategy tensors (SCAFFOLD's control delta)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class ClientReport:
    """What a client's fit cost and produced: stored per client per round."""

    client_id: int
    num_examples: int
    train_loss: float
    bytes_up: int
    bytes_down: int
    cpu_s: float
    wall_s: float
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class ServerState:
    """A strategy's state between rounds: tensors (momentum, control variates) and JSON."""

    tensors: Weights = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


# The figures every round reports, in this order wherever they are listed (records, the
# Round row, the API, the live page, the CSV).
CORE_FIGURES = ("accuracy", "loss", "bytes_up", "bytes_down", "client_cpu_s", "wall_s")


@dataclass
class RoundSummary:
    """Everything recorded for one completed round."""

    round: int
    accuracy: float
    loss: float
    bytes_up: int
    bytes_down: int
    client_cpu_s: float
    wall_s: float
    selected: list[int]
    clients: list[ClientReport]
    failures: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    def as_line(self) -> dict[str, Any]:
        return {
            "round": self.round,
            **{name: getattr(self, name) for name in CORE_FIGURES},
            **self.metrics,
        }
