"""Partitioners: sizes, label skew, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from jobspec import Partition
from orchestrator.fl.partition import PartitionError, label_skew, partition_indices

LABELS = np.repeat(np.arange(10), 100)  # 1000 examples, 10 balanced classes


def split(scheme: str, seed: int = 0, clients: int = 10, **kwargs: float) -> list[np.ndarray]:
    return partition_indices(
        LABELS,
        num_clients=clients,
        partition=Partition.model_validate({"scheme": scheme, **kwargs}),
        seed=seed,
    )


@pytest.mark.parametrize(
    "kwargs",
    [{"scheme": "iid"}, {"scheme": "dirichlet", "alpha": 0.3}, {"scheme": "shards", "shards_per_client": 2}],
)
def test_every_example_lands_on_exactly_one_client(kwargs: dict) -> None:
    parts = split(**kwargs)
    assert len(parts) == 10
    assert all(len(p) >= 1 for p in parts)
    joined = np.concatenate(parts)
    assert len(joined) == len(LABELS) and len(np.unique(joined)) == len(LABELS)


def test_iid_sizes_are_balanced() -> None:
    sizes = [len(p) for p in split("iid")]
    assert max(sizes) - min(sizes) <= 1


def test_label_skew_grows_as_alpha_shrinks() -> None:
    skews = [
        np.mean([label_skew(LABELS, split("dirichlet", seed=s, alpha=a), 10) for s in range(5)])
        for a in (100.0, 1.0, 0.1)
    ]
    assert skews[0] < skews[1] < skews[2]
    assert label_skew(LABELS, split("iid"), 10) < skews[1]


def test_shards_give_each_client_few_labels() -> None:
    parts = split("shards", shards_per_client=2)
    assert max(len(np.unique(LABELS[p])) for p in parts) <= 2
    assert all(len(p) == 50 * 2 for p in parts)


@pytest.mark.parametrize(
    "kwargs",
    [{"scheme": "iid"}, {"scheme": "dirichlet", "alpha": 0.5}, {"scheme": "shards", "shards_per_client": 3}],
)
def test_same_seed_same_split_other_seed_other_split(kwargs: dict) -> None:
    first, again, other = split(seed=1, **kwargs), split(seed=1, **kwargs), split(seed=2, **kwargs)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_tiny_alpha_still_feeds_every_client() -> None:
    parts = split("dirichlet", clients=50, alpha=0.01)
    assert all(len(p) >= 1 for p in parts)


def test_impossible_splits_are_refused() -> None:
    with pytest.raises(PartitionError, match="num_clients"):
        partition_indices(LABELS[:5], num_clients=6, partition=Partition(), seed=0)
    with pytest.raises(PartitionError, match="shards_per_client"):
        split("shards", shards_per_client=200)
