"""Split a training set over clients: iid, dirichlet label skew, or label shards.

Every scheme is a pure function of the labels, the client count, its parameter
and the seed, and gives every client at least one example.
"""

from __future__ import annotations

import numpy as np

from jobspec import Partition


class PartitionError(ValueError):
    """The data cannot be split as asked (for example more clients than examples)."""


def partition_indices(
    labels: np.ndarray, *, num_clients: int, partition: Partition, seed: int
) -> list[np.ndarray]:
    labels = np.asarray(labels)
    if num_clients > len(labels):
        raise PartitionError(f"num_clients: {num_clients} clients but only {len(labels)} training examples")
    rng = np.random.default_rng(seed)
    if partition.scheme == "iid":
        parts = iid(len(labels), num_clients, rng)
    elif partition.scheme == "dirichlet":
        assert partition.alpha is not None
        parts = dirichlet(labels, num_clients, partition.alpha, rng)
    else:
        assert partition.shards_per_client is not None
        parts = shards(labels, num_clients, partition.shards_per_client, rng)
    return [np.sort(part) for part in parts]


def iid(n: int, num_clients: int, rng: np.random.Generator) -> list[np.ndarray]:
    return list(np.array_split(rng.permutation(n), num_clients))


def dirichlet(
    labels: np.ndarray, num_clients: int, alpha: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """Label skew (Hsu et al. 2019): each class is spread over clients by Dir(alpha)."""
    parts: list[list[int]] = [[] for _ in range(num_clients)]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        shares = rng.dirichlet(np.full(num_clients, alpha))
        cuts = (np.cumsum(shares)[:-1] * len(members)).astype(int)
        for client, chunk in enumerate(np.split(members, cuts)):
            parts[client].extend(chunk.tolist())
    _fill_empty(parts, rng)
    return [np.array(part, dtype=np.int64) for part in parts]


def shards(
    labels: np.ndarray, num_clients: int, shards_per_client: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Pathological non-IID (McMahan et al. 2017): sort by label, deal out shards."""
    total = num_clients * shards_per_client
    if total > len(labels):
        raise PartitionError(
            f"partition.shards_per_client: {total} shards need at least {total} training examples, "
            f"there are {len(labels)}"
        )
    order = np.argsort(labels, kind="stable")
    pieces = np.array_split(order, total)
    assignment = rng.permutation(total)
    return [
        np.concatenate([pieces[i] for i in assignment[c * shards_per_client : (c + 1) * shards_per_client]])
        for c in range(num_clients)
    ]


def _fill_empty(parts: list[list[int]], rng: np.random.Generator) -> None:
    """Move one example from the largest client to each empty one."""
    for client, part in enumerate(parts):
        if not part:
            donor = max(range(len(parts)), key=lambda c: len(parts[c]))
            take = int(rng.integers(len(parts[donor])))
            part.append(parts[donor].pop(take))
            parts[client] = part


def label_skew(labels: np.ndarray, parts: list[np.ndarray], num_classes: int) -> float:
    """Mean total-variation distance between client label distributions and the global one."""
    overall = np.bincount(labels, minlength=num_classes) / len(labels)
    distances = []
    for part in parts:
        local = np.bincount(labels[part], minlength=num_classes) / max(len(part), 1)
        distances.append(0.5 * np.abs(local - overall).sum())
    return float(np.mean(distances))
