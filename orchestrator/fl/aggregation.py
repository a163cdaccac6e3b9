"""Aggregation maths as pure functions over lists of tensors dicts."""

from __future__ import annotations

from collections.abc import Sequence

import torch

Weights = dict[str, torch.Tensor]


def weighted_average(updates: Sequence[Weights], weights: Sequence[float]) -> Weights:
    """sum_i w_i * u_i / sum_i w_i, key by key (FedAvg's rule, McMahan et al. 2017)."""
    if not updates:
        raise ValueError("nothing to aggregate")
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("aggregation weights must sum to a positive number")
    out: Weights = {}
    for key in updates[0]:
        acc = torch.zeros_like(updates[0][key], dtype=torch.float64)
        for update, weight in zip(updates, weights, strict=True):
            acc += update[key].to(torch.float64) * (weight / total)
        out[key] = (
            acc.to(updates[0][key].dtype)
            if updates[0][key].is_floating_point()
            else acc.round().to(updates[0][key].dtype)
        )
    return out


def apply_update(weights: Weights, update: Weights, scale: float = 1.0) -> Weights:
    """weights + scale * update, keeping dtypes (integer buffers take the rounded result).

    Keys the update does not carry (weights only the server changes) stay as they are."""
    out: Weights = {}
    for key, value in weights.items():
        if key not in update:
            out[key] = value
            continue
        step = update[key].to(torch.float64) * scale
        if value.is_floating_point():
            out[key] = (value.to(torch.float64) + step).to(value.dtype)
        else:
            out[key] = (value.to(torch.float64) + step).round().to(value.dtype)
    return out


# --- robust aggregation (unweighted: a client's example count is its own claim) -----------


def coordinate_median(updates: Sequence[Weights]) -> Weights:
    """Coordinate-wise median (Yin et al. 2018); the mean of the two middle values for an even count."""
    out: Weights = {}
    n = len(updates)
    for key in updates[0]:
        ordered = torch.stack([u[key].to(torch.float32) for u in updates]).sort(dim=0).values
        out[key] = 0.5 * (ordered[(n - 1) // 2] + ordered[n // 2])
    return out


def trimmed_mean(updates: Sequence[Weights], trim_fraction: float) -> Weights:
    """Coordinate-wise mean after dropping floor(trim_fraction * n) values at each end (Yin et al. 2018)."""
    n = len(updates)
    cut = int(trim_fraction * n)
    out: Weights = {}
    for key in updates[0]:
        ordered = torch.stack([u[key].to(torch.float32) for u in updates]).sort(dim=0).values
        out[key] = ordered[cut : n - cut].mean(dim=0)
    return out


def krum_scores(updates: Sequence[Weights], num_byzantine: int) -> torch.Tensor:
    """Krum's score per update (Blanchard et al. 2017): the summed squared distances to its
    n - f - 2 nearest other updates (at least one)."""
    n = len(updates)
    distances = torch.zeros(n, n, dtype=torch.float64)
    for key in updates[0]:
        rows = torch.stack([u[key].reshape(-1).to(torch.float64) for u in updates])
        distances += torch.cdist(rows, rows) ** 2
    neighbours = max(1, n - num_byzantine - 2)
    scores = torch.empty(n, dtype=torch.float64)
    for i in range(n):
        others = torch.cat([distances[i, :i], distances[i, i + 1 :]])
        scores[i] = torch.sort(others).values[:neighbours].sum()
    return scores


# --- server optimizers (Hsu et al. 2019; Reddi et al. 2021) ------------------------------

BATCHNORM_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")


def is_statistic(key: str) -> bool:
    """Batch-norm running statistics: averaged as they are, never treated as a gradient."""
    return key.rsplit(".", 1)[-1] in BATCHNORM_STATISTICS


def momentum_step(velocity: torch.Tensor | None, delta: torch.Tensor, momentum: float) -> torch.Tensor:
    """FedAvgM's server velocity: v = momentum * v + delta (v starts at delta)."""
    return delta.clone() if velocity is None else momentum * velocity + delta


def adaptive_moments(
    kind: str,
    first: torch.Tensor,
    second: torch.Tensor,
    delta: torch.Tensor,
    *,
    beta1: float,
    beta2: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One update of FedAdam / FedYogi / FedAdagrad's moments (Reddi et al. 2021, Algorithm 2)."""
    first = beta1 * first + (1 - beta1) * delta
    squared = delta * delta
    if kind == "adam":
        second = beta2 * second + (1 - beta2) * squared
    elif kind == "yogi":
        second = second - (1 - beta2) * squared * torch.sign(second - squared)
    elif kind == "adagrad":
        second = second + squared
    else:
        raise ValueError(f"unknown adaptive optimizer '{kind}'")
    return first, second


def adaptive_direction(first: torch.Tensor, second: torch.Tensor, tau: float) -> torch.Tensor:
    return first / (torch.sqrt(second) + tau)
