"""The strategy interface, in Flower's vocabulary (`configure_fit`, `aggregate_fit`).

A strategy decides who trains and with what config, and turns client updates
(local minus global weights) into the next global weights. Strategies that need
client-side help (SCAFFOLD's control variates) also provide the client hooks
`client_grad_correction` and `client_extras`. `Strategy` is FedAvg's behaviour;
the algorithms in the `strategies` package and `lora.py` override what differs.

The mean of the round's updates is not decided here but by the `Aggregator` a
strategy is built with (`WeightedMean`, or `privacy.PrivateMean` under
client-level DP: `strategies.strategy_for` picks it from `spec.dp`), so DP wraps
whichever algorithm steps the server by that mean, as Flower's DP wrappers wrap a
strategy. This module stays outside the `strategies` package because `lora.py`
subclasses `Strategy` and the package's table imports `lora.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from torch import nn

from jobspec import JobSpec

from .aggregation import apply_update, weighted_average
from .records import FitIns, FitRes, ServerState, Weights
from .selection import select_clients

GradCorrection = Callable[[nn.Module], None]


class Aggregator(Protocol):
    """The mean of one round's client updates that a strategy moves the server by."""

    def __call__(self, results: Sequence[FitRes]) -> Weights: ...


class WeightedMean:
    """FedAvg's rule: the example-weighted mean of the updates."""

    def __call__(self, results: Sequence[FitRes]) -> Weights:
        return weighted_average([r.update for r in results], [r.num_examples for r in results])


WEIGHTED_MEAN = WeightedMean()


class Strategy:
    """FedAvg's behaviour; subclasses override what differs."""

    def __init__(self, spec: JobSpec, mean: Aggregator = WEIGHTED_MEAN) -> None:
        self.spec = spec
        self.mean = mean

    # --- server side -------------------------------------------------------------
    def initialize(self, weights: Weights) -> ServerState:
        return ServerState()

    def configure_fit(self, *, server_round: int, state: ServerState) -> list[FitIns]:
        chosen = select_clients(self.spec, server_round, state.meta)
        return [FitIns(client_id, self.fit_config(server_round, client_id)) for client_id in chosen]

    def fit_config(self, server_round: int, client_id: int) -> dict[str, Any]:
        spec = self.spec
        return {
            "round": server_round,
            "epochs": spec.local_epochs,
            "batch_size": spec.batch_size,
            "learning_rate": spec.learning_rate,
            "optimizer": spec.optimizer,
            "proximal_mu": spec.proximal_mu or 0.0,
        }

    def downlink_extras(self, *, state: ServerState, client_id: int) -> Weights:
        """Tensors besides the global weights that a client receives (counted in bytes)."""
        return {}

    def aggregate_updates(self, results: list[FitRes]) -> Weights:
        """The update the server steps by: the mean this strategy was built with."""
        return self.mean(results)

    def aggregate_fit(
        self, *, server_round: int, weights: Weights, results: list[FitRes], state: ServerState
    ) -> tuple[Weights, ServerState, dict[str, Any]]:
        assert self.spec.server_learning_rate is not None
        delta = self.aggregate_updates(results)
        return apply_update(weights, delta, self.spec.server_learning_rate), state, {}

    # --- client side -------------------------------------------------------------
    def client_grad_correction(self, *, extras: Weights, client_state: Weights) -> GradCorrection | None:
        return None

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
        """(extra tensors to upload, the client's new state)."""
        return {}, client_state
