"""The server strategies (the interface is `strategy.py`), and `STRATEGIES`: the one
table mapping every spec algorithm name to its class, FLoRA (`lora.py`) included.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from jobspec import JobSpec

from .aggregation import (
    adaptive_direction,
    adaptive_moments,
    apply_update,
    coordinate_median,
    is_statistic,
    krum_scores,
    momentum_step,
    trimmed_mean,
)
from .lora import FLoRA
from .records import FitRes, ServerState, Weights
from .strategy import GradCorrection, Strategy


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


class Scaffold(Strategy):
    """Karimireddy et al. 2020 (option II). The server sends its control variate c with the
    weights; client i keeps c_i in its private state and corrects every local step by c - c_i.
    The correction is applied in weight space (w -= lr * (c - c_i) after each gradient), which is
    SCAFFOLD's corrected step under SGD and keeps c in the units it is measured in,
    (x - y_i) / (steps * lr), under Adam too. After training, c_i+ = c_i - c + (x - y_i) / (K lr);
    the client uploads delta c_i = c_i+ - c_i beside its update (counted in the bytes), and the
    server moves c by the sum of the deltas over num_clients."""

    CONTROL = "c/"  # server state
    CLIENT_CONTROL = "scaffold/"  # client state

    def initialize(self, weights: Weights) -> ServerState:
        trained, _ = split_statistics(weights)
        return ServerState(
            tensors={
                self.CONTROL + k: torch.zeros_like(v, dtype=torch.float32)
                for k, v in trained.items()
                if v.is_floating_point()
            }
        )

    def downlink_extras(self, *, state: ServerState, client_id: int) -> Weights:
        return {k[len(self.CONTROL) :]: v for k, v in state.tensors.items() if k.startswith(self.CONTROL)}

    def aggregate_fit(
        self, *, server_round: int, weights: Weights, results: list[FitRes], state: ServerState
    ) -> tuple[Weights, ServerState, dict[str, Any]]:
        assert self.spec.server_learning_rate is not None
        delta = self.aggregate_updates(results)
        tensors = dict(state.tensors)
        for key in list(tensors):
            if key.startswith(self.CONTROL):
                name = key[len(self.CONTROL) :]
                change = torch.stack([r.extras[name] for r in results]).sum(dim=0)
                tensors[key] = tensors[key] + change / self.spec.num_clients
        new_weights = apply_update(weights, delta, self.spec.server_learning_rate)
        return new_weights, ServerState(tensors=tensors, meta=state.meta), {}

    def client_grad_correction(self, *, extras: Weights, client_state: Weights) -> GradCorrection | None:
        assert self.spec.learning_rate is not None
        learning_rate = self.spec.learning_rate
        correction = {
            key: value - client_state.get(self.CLIENT_CONTROL + key, torch.zeros_like(value))
            for key, value in extras.items()
        }

        def correct(model: nn.Module) -> None:
            with torch.no_grad():
                for name, param in model.named_parameters():
                    if name in correction:
                        param.sub_(learning_rate * correction[name])

        return correct

    def client_extras(
        self,
        *,
        global_weights: Weights,
        local_weights: Weights,
        extras: Weights,
        client_state: Weights,
        steps: int,
        learning_rate: float,
    ) -> tuple[Weights, Weights]:
        state = dict(client_state)
        changes: Weights = {}
        for key, server_control in extras.items():
            old = client_state.get(self.CLIENT_CONTROL + key, torch.zeros_like(server_control))
            drift = (global_weights[key].to(torch.float32) - local_weights[key].to(torch.float32)) / (
                max(steps, 1) * learning_rate
            )
            new = old - server_control + drift
            changes[key] = new - old
            state[self.CLIENT_CONTROL + key] = new
        return changes, state


class Krum(Strategy):
    """Blanchard et al. 2017: the single update closest to its n - f - 2 nearest neighbours, with
    f = floor(trim_fraction x sampled clients) assumed Byzantine."""

    def chosen(self, results: list[FitRes]) -> int:
        num_byzantine = int(self.spec.robust.trim_fraction * len(results))
        scores = krum_scores([r.update for r in results], num_byzantine)
        return int(torch.argmin(scores))

    def aggregate_updates(self, results: list[FitRes]) -> Weights:
        return results[self.chosen(results)].update

    def aggregate_fit(
        self, *, server_round: int, weights: Weights, results: list[FitRes], state: ServerState
    ) -> tuple[Weights, ServerState, dict[str, Any]]:
        assert self.spec.server_learning_rate is not None
        winner = results[self.chosen(results)]
        new_weights = apply_update(weights, winner.update, self.spec.server_learning_rate)
        return new_weights, state, {"krum_client": winner.client_id}


class Median(Strategy):
    """Coordinate-wise median of the updates (Yin et al. 2018)."""

    def aggregate_updates(self, results: list[FitRes]) -> Weights:
        return coordinate_median([r.update for r in results])


class TrimmedMean(Strategy):
    """Coordinate-wise trimmed mean (Yin et al. 2018), dropping `robust.trim_fraction` at each end."""

    def aggregate_updates(self, results: list[FitRes]) -> Weights:
        return trimmed_mean([r.update for r in results], self.spec.robust.trim_fraction)


STRATEGIES: dict[str, type[Strategy]] = {
    "fedavg": FedAvg,
    "fedprox": FedProx,
    "fedavgm": FedAvgM,
    "fedadam": FedAdam,
    "fedyogi": FedYogi,
    "fedadagrad": FedAdagrad,
    "scaffold": Scaffold,
    "krum": Krum,
    "median": Median,
    "trimmed_mean": TrimmedMean,
    "flora": FLoRA,
}


def strategy_for(spec: JobSpec) -> Strategy:
    cls = STRATEGIES.get(spec.algorithm)
    if cls is None:
        raise ValueError(f"algorithm '{spec.algorithm}' is not available in this installation")
    return cls(spec)
