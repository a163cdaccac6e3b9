"""The server strategies, one module per family (the interface is `..strategy`), and
`STRATEGIES`: the one table mapping every spec algorithm name to its class, FLoRA
(`..lora`) included. `strategy_for` builds a job's strategy with the mean its
`spec.dp` asks for.
"""

from __future__ import annotations

from jobspec import JobSpec

from ..lora import FLoRA
from ..privacy import PrivateMean
from ..strategy import WEIGHTED_MEAN, Aggregator, Strategy
from .adaptive import FedAdagrad, FedAdam, FedYogi
from .fedavg import FedAvg, FedAvgM, FedProx
from .robust import Krum, Median, TrimmedMean
from .scaffold import Scaffold

STRATEGIES: dict[str, type[Strategy]] = {
    "fedavg": FedAvg,
    "fedprox": FedProx,
    "fedavgm": FedAvgM,
    "fedadam": FedAdam,
    "fedyogi": FedYogi,
    "fedadagrad": FedAdagrad,
    "scaffold": Scaffold,
    "krum": Krum,
    "median": Median,
    "trimmed_mean": TrimmedMean,
    "flora": FLoRA,
}


def mean_for(spec: JobSpec) -> Aggregator:
    """The example-weighted mean, or under client-level DP the noised mean of clipped updates."""
    dp = spec.dp
    if not dp.enabled:
        return WEIGHTED_MEAN
    assert dp.clip_norm is not None and dp.noise_multiplier is not None
    return PrivateMean(clip_norm=dp.clip_norm, noise_multiplier=dp.noise_multiplier)


def strategy_for(spec: JobSpec) -> Strategy:
    cls = STRATEGIES.get(spec.algorithm)
    if cls is None:
        raise ValueError(f"algorithm '{spec.algorithm}' is not available in this installation")
    return cls(spec, mean_for(spec))
