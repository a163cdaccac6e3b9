"""Run a whole job in this process: no database, broker or workers.

The same engine steps as the Celery path, called in a loop; client states are
kept in memory here (in the database-backed path they live in artifact storage).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from jobspec import JobSpec

from .engine import (
    client_fit,
    downlink_message,
    evaluate_weights,
    job_initialize,
    round_aggregate,
    round_configure,
    summarize_round,
)
from .records import RoundSummary, Weights


class InProcessJob:
    """Iterate to run rounds; `weights` holds the current global weights."""

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self.weights, self.state = job_initialize(spec)
        self.client_states: dict[int, Weights] = {}

    def run_round(self, server_round: int) -> RoundSummary:
        wall_start = time.perf_counter()
        instructions = round_configure(self.spec, server_round, self.state)
        uplinks, reports = [], []
        for ins in instructions:
            payload = downlink_message(self.spec, self.weights, self.state, ins)
            uplink, client_state, report = client_fit(
                self.spec, payload, client_state=self.client_states.get(ins.client_id)
            )
            self.client_states[ins.client_id] = client_state
            uplinks.append(uplink)
            reports.append(report)
        self.weights, self.state, metrics = round_aggregate(
            self.spec, server_round, self.weights, self.state, uplinks
        )
        accuracy, loss = evaluate_weights(self.spec, self.weights)
        return summarize_round(
            self.spec,
            server_round,
            instructions=instructions,
            reports=reports,
            failures=[],
            aggregate_metrics=metrics,
            accuracy=accuracy,
            loss=loss,
            wall_s=time.perf_counter() - wall_start,
        )

    def __iter__(self) -> Iterator[RoundSummary]:
        for server_round in range(1, self.spec.rounds + 1):
            yield self.run_round(server_round)
