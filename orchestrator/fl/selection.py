"""Client selection policies: which clients train in a round.

Each policy is a pure function of the spec, the round, the strategy state's
`meta` (history it may read) and a seeded generator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .spec import JobSpec

Policy = Callable[[JobSpec, int, dict[str, Any], np.random.Generator], list[int]]


def select_random(
    spec: JobSpec, server_round: int, meta: dict[str, Any], rng: np.random.Generator
) -> list[int]:
    chosen = rng.choice(spec.num_clients, size=spec.sampled_clients(), replace=False)
    return sorted(int(c) for c in chosen)


POLICIES: dict[str, Policy] = {
    "random": select_random,
}


def select_clients(spec: JobSpec, server_round: int, meta: dict[str, Any]) -> list[int]:
    policy = POLICIES.get(spec.selection)
    if policy is None:
        raise ValueError(f"selection '{spec.selection}' is not available in this installation")
    rng = np.random.default_rng([spec.seed, server_round, 1])
    return policy(spec, server_round, meta, rng)
