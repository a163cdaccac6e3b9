"""Byzantine-robust aggregation: Krum, coordinate-wise median and trimmed mean.

Each replaces the mean of updates by its own statistic, so these strategies never
call the `Aggregator` they are built with: client-level DP cannot wrap them, and
the job spec refuses DP for them (`jobspec.DP_ALGORITHMS`).
"""

from __future__ import annotations

from typing import Any

import torch

from ..aggregation import apply_update, coordinate_median, krum_scores, trimmed_mean
from ..records import FitRes, ServerState, Weights
from ..strategy import Strategy


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
