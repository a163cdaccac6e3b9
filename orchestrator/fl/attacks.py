"""Simulated adversaries, an evaluation feature for robust aggregation (off by default).

With `"attack": {"kind": ..., "fraction": f, "scale": s}` in the spec, a fixed
set of round-half-up(f x num_clients) clients (at least one, chosen by the seed)
is malicious for the whole job:

- `sign_flip` uploads -s x its honest update (s defaults to 4),
- `gaussian` uploads Gaussian noise of standard deviation s instead (default 1),
- `scale` uploads s x its honest update (default 10),
- `label_flip` trains honestly on labels permuted by a fixed derangement
  (no class keeps its label).

The malicious upload then goes through the same compression as everyone's.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from jobspec import JobSpec

Weights = dict[str, torch.Tensor]

ATTACK_STREAM = 0x41545441  # "ATTA"


def malicious_count(fraction: float, num_clients: int) -> int:
    return min(num_clients, max(1, math.floor(fraction * num_clients + 0.5)))


@lru_cache(maxsize=64)
def _malicious(seed: int, num_clients: int, fraction: float) -> frozenset[int]:
    rng = np.random.default_rng([seed, ATTACK_STREAM])
    chosen = rng.choice(num_clients, size=malicious_count(fraction, num_clients), replace=False)
    return frozenset(int(c) for c in chosen)


def malicious_clients(spec: JobSpec) -> frozenset[int]:
    if spec.attack is None:
        return frozenset()
    return _malicious(spec.seed, spec.num_clients, spec.attack.fraction)


def is_malicious(spec: JobSpec, client_id: int) -> bool:
    return client_id in malicious_clients(spec)


def label_permutation(seed: int, num_classes: int) -> torch.Tensor:
    """A seeded derangement of the classes: new_label = permutation[label], never equal to label."""
    if num_classes < 2:
        return torch.arange(num_classes)
    rng = np.random.default_rng([seed, ATTACK_STREAM, num_classes])
    while True:
        permutation = rng.permutation(num_classes)
        if not np.any(permutation == np.arange(num_classes)):
            return torch.from_numpy(permutation)


def poisoned_labels(spec: JobSpec, client_id: int, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The labels this client trains on: permuted for a malicious client under `label_flip`."""
    if spec.attack is None or spec.attack.kind != "label_flip" or not is_malicious(spec, client_id):
        return labels
    return label_permutation(spec.seed, num_classes)[labels]


def poisoned_update(spec: JobSpec, client_id: int, update: Weights, generator: torch.Generator) -> Weights:
    """What this client uploads instead of its honest update (the update itself if honest)."""
    attack = spec.attack
    if attack is None or attack.kind == "label_flip" or not is_malicious(spec, client_id):
        return update
    assert attack.scale is not None
    if attack.kind == "sign_flip":
        return {key: -attack.scale * value for key, value in update.items()}
    if attack.kind == "scale":
        return {key: attack.scale * value for key, value in update.items()}
    return {
        key: torch.randn(value.shape, generator=generator) * attack.scale for key, value in update.items()
    }
