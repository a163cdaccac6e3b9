"""FedAvg, FedProx and FedAvgM, and the server-step helpers the server optimizers share."""

from __future__ import annotations

from typing import Any

from ..aggregation import apply_update, is_statistic, momentum_step
from ..records import FitRes, ServerState, Weights
from ..strategy import Strategy


class FedAvg(Strategy):
    """McMahan et al. 2017: the example-weighted mean of client updates."""


class FedProx(FedAvg):
    """Li et al. 2020: FedAvg aggregation; the proximal term lives in local training."""


def split_statistics(weights: Weights) -> tuple[Weights, Weights]:
    """(trainable entries a server optimizer steps, batch-norm statistics it only averages)."""
    trained = {k: v for k, v in weights.items() if not is_statistic(k)}
    return trained, {k: v for k, v in weights.items() if is_statistic(k)}


def server_step(weights: Weights, step: Weights, statistics: Weights, learning_rate: float) -> Weights:
    """weights + learning_rate * step, with batch-norm statistics moved by their plain mean."""
    return apply_update(apply_update(weights, step, learning_rate), statistics)


class FedAvgM(Strategy):
    """Hsu et al. 2019: server momentum on the mean update, w += lr * v with v = beta * v + delta."""

    def aggregate_fit(
        self, *, server_round: int, weights: Weights, results: list[FitRes], state: ServerState
    ) -> tuple[Weights, ServerState, dict[str, Any]]:
        assert self.spec.server_learning_rate is not None and self.spec.server_momentum is not None
        trained, statistics = split_statistics(self.aggregate_updates(results))
        tensors = dict(state.tensors)
        for key, delta in trained.items():
            tensors[f"v/{key}"] = momentum_step(tensors.get(f"v/{key}"), delta, self.spec.server_momentum)
        step = {key: tensors[f"v/{key}"] for key in trained}
        new_weights = server_step(weights, step, statistics, self.spec.server_learning_rate)
        return new_weights, ServerState(tensors=tensors, meta=state.meta), {}
