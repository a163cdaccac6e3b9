"""The adaptive server optimizers of Reddi et al. 2021: FedAdam, FedYogi, FedAdagrad."""

from __future__ import annotations

from typing import Any

import torch

from ..aggregation import adaptive_direction, adaptive_moments
from ..records import FitRes, ServerState, Weights
from ..strategy import Strategy
from .fedavg import server_step, split_statistics


class FedOpt(Strategy):
    """Reddi et al. 2021 (Algorithm 2): the mean update is a pseudo-gradient for a server Adam,
    Yogi or Adagrad: m = b1 m + (1 - b1) delta, v per `kind`, w += lr * m / (sqrt(v) + tau),
    with m starting at 0 and v at tau^2. Batch-norm statistics are averaged, not stepped."""

    kind = "adam"

    def aggregate_fit(
        self, *, server_round: int, weights: Weights, results: list[FitRes], state: ServerState
    ) -> tuple[Weights, ServerState, dict[str, Any]]:
        assert self.spec.server_learning_rate is not None
        constants = self.spec.server_optimizer
        trained, statistics = split_statistics(self.aggregate_updates(results))
        tensors = dict(state.tensors)
        step: Weights = {}
        for key, delta in trained.items():
            first = tensors.get(f"m/{key}", torch.zeros_like(delta))
            second = tensors.get(f"v/{key}", torch.full_like(delta, constants.tau**2))
            first, second = adaptive_moments(
                self.kind, first, second, delta, beta1=constants.beta1, beta2=constants.beta2
            )
            tensors[f"m/{key}"], tensors[f"v/{key}"] = first, second
            step[key] = adaptive_direction(first, second, constants.tau)
        new_weights = server_step(weights, step, statistics, self.spec.server_learning_rate)
        return new_weights, ServerState(tensors=tensors, meta=state.meta), {}


class FedAdam(FedOpt):
    kind = "adam"


class FedYogi(FedOpt):
    kind = "yogi"


class FedAdagrad(FedOpt):
    kind = "adagrad"
