"""Simulated system profiles: how fast each client computes and talks, and how often it is online.

Scheduling only matters when clients differ, so every simulated client gets a
profile drawn from the job's seed (client by client, so adding clients never
changes the others'). The ranges below are this simulator's own choice, made to
resemble the heterogeneity FedScale (Lai et al. 2022) reports for real devices:
two orders of magnitude in training throughput and in bandwidth, uplinks slower
than downlinks.

A client's simulated round time is download + local training + upload:
payload bytes at its bandwidths, and training FLOPs at its throughput. The
FLOPs come from counting one forward and backward pass of the real model
(`torch.utils.flop_counter`), times examples and epochs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

# Tags that keep each random stream of a job apart (rounds never reach these values).
PROFILE_STREAM = 0x50524F46  # "PROF"
AVAILABILITY_STREAM = 0x41564149  # "AVAI"

# Ranges of the simulated devices (log-uniform unless noted).
FLOPS_RANGE = (1e8, 1e10)  # effective training FLOP/s: phones to laptops
DOWN_BPS_RANGE = (1e6, 1e8)  # downlink bit/s: 1 to 100 Mbit/s
UP_BPS_RANGE = (2.5e5, 2.5e7)  # uplink bit/s: 0.25 to 25 Mbit/s
AVAILABILITY_RANGE = (0.5, 1.0)  # probability of being online in a round (uniform)


@dataclass(frozen=True)
class ClientProfile:
    flops_per_s: float
    down_bps: float
    up_bps: float
    availability: float


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    low, high = np.log(bounds[0]), np.log(bounds[1])
    return float(np.exp(rng.uniform(low, high)))


@lru_cache(maxsize=64)
def client_profile(seed: int, client_id: int) -> ClientProfile:
    rng = np.random.default_rng([seed, PROFILE_STREAM, client_id])
    return ClientProfile(
        flops_per_s=_log_uniform(rng, FLOPS_RANGE),
        down_bps=_log_uniform(rng, DOWN_BPS_RANGE),
        up_bps=_log_uniform(rng, UP_BPS_RANGE),
        availability=float(rng.uniform(*AVAILABILITY_RANGE)),
    )


def client_profiles(seed: int, num_clients: int) -> list[ClientProfile]:
    return [client_profile(seed, client_id) for client_id in range(num_clients)]


def is_online(seed: int, server_round: int, client_id: int) -> bool:
    """Whether a client is reachable this round (a seeded draw against its availability)."""
    rng = np.random.default_rng([seed, AVAILABILITY_STREAM, server_round, client_id])
    return bool(rng.random() < client_profile(seed, client_id).availability)


def compute_seconds(profile: ClientProfile, train_flops: float) -> float:
    return train_flops / profile.flops_per_s


def transfer_seconds(profile: ClientProfile, *, bytes_down: float, bytes_up: float) -> float:
    return 8.0 * bytes_down / profile.down_bps + 8.0 * bytes_up / profile.up_bps


def simulated_duration(
    profile: ClientProfile, *, train_flops: float, bytes_down: float, bytes_up: float
) -> float:
    """Seconds a client with this profile needs for one round: download, train, upload."""
    return compute_seconds(profile, train_flops) + transfer_seconds(
        profile, bytes_down=bytes_down, bytes_up=bytes_up
    )


def training_flops_per_example(model: nn.Module, example: Any, label: torch.Tensor) -> float:
    """FLOPs of one forward and backward pass on a single example (counted, not estimated)."""
    was_training = model.training
    model.eval()  # same FLOPs, but batch statistics of a single example are not disturbed
    try:
        with FlopCounterMode(display=False) as counter:
            logits = model(**example) if isinstance(example, dict) else model(example)
            F.cross_entropy(logits, label).backward()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return float(counter.get_total_flops())
