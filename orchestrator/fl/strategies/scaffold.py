"""SCAFFOLD (Karimireddy et al. 2020): server and client control variates correct client drift."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..aggregation import apply_update
from ..records import FitRes, ServerState, Weights
from ..strategy import GradCorrection, Strategy
from .fedavg import split_statistics


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
