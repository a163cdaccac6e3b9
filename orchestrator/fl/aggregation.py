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
    """weights + scale * update, keeping dtypes (integer buffers take the rounded result)."""
    out: Weights = {}
    for key, value in weights.items():
        step = update[key].to(torch.float64) * scale
        if value.is_floating_point():
            out[key] = (value.to(torch.float64) + step).to(value.dtype)
        else:
            out[key] = (value.to(torch.float64) + step).round().to(value.dtype)
    return out


def subtract(left: Weights, right: Weights) -> Weights:
    """left - right, in float32 (integer buffers included), key by key."""
    return {key: left[key].to(torch.float32) - right[key].to(torch.float32) for key in left}
