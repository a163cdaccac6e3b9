"""Client-level differential privacy (DP-FedAvg, McMahan et al. 2018).

Each client clips its update to L2 norm `clip_norm` before upload; the server
clips every decoded update again (a no-op for honest uncompressed clients, but
it keeps the sensitivity bound true whatever compression or a malicious client
sent), adds Gaussian noise of standard deviation `noise_multiplier * clip_norm`
to the sum, and divides by the number of sampled clients.

The noise is drawn from the operating system's entropy, never from the job's
seed: noise that anyone holding the spec could regenerate would protect nothing.
DP runs are therefore not bit-for-bit reproducible.

The privacy spent is computed by Opacus' RDP accountant (Mironov 2017) for
`server_round` compositions of the subsampled Gaussian mechanism. Amplification
by sampling is only claimed for `random` selection, with rate
clients_per_round / num_clients (the accountant assumes Poisson sampling; a
fixed-size uniform sample is the usual approximation). Every other policy picks
clients on purpose, so it is accounted at rate 1.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from jobspec import JobSpec

from .records import FitRes, Weights


def update_norm(update: Weights) -> float:
    return math.sqrt(sum(float(t.to(torch.float64).pow(2).sum()) for t in update.values()))


def clip_update(update: Weights, clip_norm: float) -> Weights:
    """Scale the update down to L2 norm `clip_norm` (over all tensors together) if it is longer."""
    norm = update_norm(update)
    if norm <= clip_norm:
        return update
    factor = clip_norm / norm
    return {key: value * factor for key, value in update.items()}


def private_mean(
    updates: Sequence[Weights],
    *,
    clip_norm: float,
    noise_multiplier: float,
    generator: torch.Generator | None = None,
) -> Weights:
    """(sum of clipped updates + N(0, (noise_multiplier * clip_norm)^2)) / number of updates."""
    if not updates:
        raise ValueError("nothing to aggregate")
    if generator is None:
        generator = torch.Generator().manual_seed(secrets.randbits(63))
    clipped = [clip_update(update, clip_norm) for update in updates]
    std = noise_multiplier * clip_norm
    out: Weights = {}
    for key in clipped[0]:
        total = torch.stack([u[key].to(torch.float32) for u in clipped]).sum(dim=0)
        noise = torch.randn(total.shape, generator=generator) * std
        out[key] = (total + noise) / len(clipped)
    return out


@dataclass(frozen=True)
class PrivateMean:
    """The `Aggregator` of DP strategies (`strategy.py`): `private_mean` of the round's updates.

    Unweighted on purpose: weighting by example counts would let a client's
    sensitivity grow with its data, and the clipping bound would no longer hold.
    """

    clip_norm: float
    noise_multiplier: float

    def __call__(self, results: Sequence[FitRes]) -> Weights:
        return private_mean(
            [r.update for r in results], clip_norm=self.clip_norm, noise_multiplier=self.noise_multiplier
        )


def sampling_rate(spec: JobSpec) -> float:
    if spec.selection != "random":
        return 1.0
    return spec.sampled_clients() / spec.num_clients


def epsilon_spent(spec: JobSpec, server_round: int) -> float | None:
    """The epsilon spent after `server_round` rounds at the spec's delta; None without noise."""
    noise = spec.dp.noise_multiplier
    if not spec.dp.enabled or not noise:
        return None
    from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent  # slow import: only for DP
    from opacus.accountants.rdp import RDPAccountant

    orders = list(RDPAccountant.DEFAULT_ALPHAS)
    rdp = compute_rdp(q=sampling_rate(spec), noise_multiplier=noise, steps=server_round, orders=orders)
    epsilon, _ = get_privacy_spent(orders=orders, rdp=rdp, delta=spec.dp.delta)
    return float(epsilon)
