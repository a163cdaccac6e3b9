"""What a user asks for: a consistent assignment of spec fields, and what the parser must
produce for it.

Part of the generator (generator.py). `sample_assignment` draws from the generator's `rng`
in a fixed order, so a seed always gives the same data.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from ..decode import (
    DEFAULT_DP_CLIP_NORM,
    DEFAULT_DP_NOISE,
    DEFAULT_HPO_TRIALS,
    VAGUE_ALPHA,
    VAGUE_SHARDS,
)
from ..values import DEFAULT_NUM_CLIENTS, clients_from_share
from . import phrasings as P
from .generator_numbers import _weighted

# --- what a user asks for ------------------------------------------------------------------

_WEIGHTED_VALUES: dict[str, list[tuple[float, Any]]] = {
    "dataset": [
        (0.12, "digits"),
        (0.2, "mnist"),
        (0.15, "fashion_mnist"),
        (0.16, "cifar10"),
        (0.08, "cifar100"),
        (0.08, "sst2"),
        (0.07, "ag_news"),
        (0.09, "csv"),
        (0.05, "other"),
    ],
    "algorithm": [
        (0.2, "fedavg"),
        (0.14, "fedprox"),
        (0.07, "fedavgm"),
        (0.07, "fedadam"),
        (0.05, "fedyogi"),
        (0.05, "fedadagrad"),
        (0.07, "scaffold"),
        (0.06, "krum"),
        (0.06, "median"),
        (0.07, "trimmed_mean"),
        (0.06, "flora"),
        (0.04, "other"),
    ],
}
_VALUES: dict[str, list[Any]] = {
    "num_clients": [
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        10,
        10,
        12,
        15,
        16,
        20,
        20,
        24,
        25,
        30,
        32,
        40,
        50,
        50,
        60,
        64,
        75,
        80,
        100,
        100,
        128,
        200,
        250,
        500,
        1000,
    ],
    "rounds": [
        1,
        2,
        3,
        5,
        10,
        10,
        15,
        20,
        20,
        25,
        30,
        40,
        50,
        50,
        60,
        75,
        100,
        100,
        120,
        150,
        200,
        250,
        300,
        500,
        1000,
    ],
    "local_epochs": [1, 1, 1, 2, 2, 3, 3, 4, 5, 5, 10],
    "batch_size": [8, 10, 16, 16, 20, 32, 32, 50, 64, 64, 100, 128, 256, 512],
    "learning_rate": [
        0.5,
        0.2,
        0.1,
        0.05,
        0.03,
        0.02,
        0.01,
        0.01,
        0.005,
        0.003,
        0.002,
        0.001,
        0.001,
        5e-4,
        3e-4,
        2e-4,
        1e-4,
        5e-5,
        3e-5,
        2e-5,
        1e-5,
    ],
    "server_learning_rate": [2.0, 1.0, 1.0, 0.5, 0.3, 0.1, 0.05, 0.03, 0.01, 0.003, 0.001],
    "server_momentum": [0.9, 0.9, 0.95, 0.99, 0.5, 0.7, 0.8, 0.6],
    "proximal_mu": [0.0001, 0.001, 0.005, 0.01, 0.01, 0.05, 0.1, 0.5, 1.0],
    "partition.alpha": [0.01, 0.05, 0.1, 0.1, 0.2, 0.3, 0.5, 0.5, 1.0, 2.0, 5.0, 10.0, 100.0],
    "partition.shards_per_client": [1, 2, 2, 2, 3, 4, 5, 10],
    "compression.ratio": [0.001, 0.005, 0.01, 0.01, 0.02, 0.05, 0.1, 0.1, 0.2, 0.25, 0.3, 0.5],
    "compression.bits": [1, 2, 2, 3, 4, 4, 6, 12, 16],  # 8 bits is int8
    "lora.rank": [1, 2, 4, 4, 8, 8, 16, 32, 64],
    "lora.alpha": [1, 2, 4, 8, 16, 16, 32, 32, 64, 128],
    "robust.trim_fraction": [0.05, 0.1, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4],
    "dp.noise_multiplier": [0.3, 0.5, 0.7, 0.8, 1.0, 1.0, 1.1, 1.2, 1.5, 2.0, 3.0],
    "dp.clip_norm": [0.1, 0.5, 1.0, 1.0, 2.0, 5.0, 10.0],
    "dp.delta": [1e-5, 1e-5, 1e-6, 1e-4, 1e-7],
    "seed": [0, 1, 2, 3, 7, 13, 42, 42, 123, 1234, 2024, 31337, 99],
    "hpo.trials": [5, 10, 16, 20, 25, 30, 40, 50, 64, 100, 200],
    "client_fraction": [0.01, 0.05, 0.1, 0.1, 0.2, 0.25, 0.3, 0.5, 0.5, 1.0],
}
# The other heads' values, drawn with rng.choice (a value listed twice is drawn twice as often).
# "hpo.enabled" and "dp" are drawn in _choose_search / _choose_privacy: true/false, on/off.
_CHOICES: dict[str, list[str]] = {
    "optimizer": ["sgd", "adam", "adamw"],
    "partition.scheme": ["iid", "dirichlet", "dirichlet", "shards"],
    "compression.method": ["none", "topk", "topk", "int8", "qsgd", "qsgd"],
    "compression.error_feedback": ["true", "false"],
    "selection": ["random", "round_robin", "oort", "power_of_choice", "deadline"],
    "hpo.objective": ["accuracy", "loss"],
}
# The models a user asks for with each data set (jobspec.catalogue's compatible models, "hf:"
# as the head's "hf"; tests/intent_llm/test_tables_cover_contract.py keeps them equal).
_MODELS_FOR_DATASET: dict[str, list[str]] = {
    "digits": ["cnn", "mlp"],
    "mnist": ["cnn", "mlp"],
    "fashion_mnist": ["cnn", "mlp"],
    "cifar10": ["cnn", "resnet18", "resnet18"],
    "cifar100": ["cnn", "resnet18", "resnet18"],
    "sst2": ["minilm", "minilm", "hf"],
    "ag_news": ["minilm", "minilm", "hf"],
    "csv": ["mlp", "minilm", "hf"],  # the held-out family asks only for "mlp"
    "other": ["mlp", "cnn", "resnet18", "minilm"],  # a data set Flotilla does not have
}
_ANY_MODEL = ["mlp", "cnn", "resnet18", "minilm", "hf"]  # no data set named
_TIMES = [2, 4, 5, 10, 10, 20, 50, 100]
_TEXT = ("sst2", "ag_news")


def _pick(rng: random.Random, key: str) -> Any:
    if key in _WEIGHTED_VALUES:
        return _weighted(_WEIGHTED_VALUES[key], rng)
    value = rng.choice(_VALUES[key])
    if key in ("num_clients", "rounds") and rng.random() < 0.25:
        value = rng.randint(2, 300)
    if key == "seed" and rng.random() < 0.3:
        value = rng.randint(0, 99999)
    return value


_Want = Callable[[float], bool]


def sample_assignment(rng: random.Random, verbosity: float, eval_family: bool) -> dict[str, Any]:
    """A consistent set of choices a user might state; keys are heads and number fields.

    Each group of fields is drawn by its own helper, in a fixed order: the helpers share
    `rng`, so their order (and the order of draws inside them) is what makes a seed
    reproduce the same data.
    """

    def want(probability: float) -> bool:
        return rng.random() < min(0.95, probability * verbosity)

    chosen: dict[str, Any] = {}
    _choose_data_and_model(rng, want, chosen, eval_family)
    _choose_algorithm(rng, want, chosen)
    _choose_clients(rng, want, chosen)
    _choose_training(rng, want, chosen)
    _choose_partition(rng, want, chosen)
    _choose_compression(rng, want, chosen)
    if want(0.2):
        chosen["selection"] = rng.choice(_CHOICES["selection"])
    _choose_lora(rng, want, chosen)
    _choose_aggregation_settings(rng, want, chosen)
    _choose_privacy(rng, want, chosen)
    if want(0.15):
        chosen["seed"] = _pick(rng, "seed")
    _choose_search(rng, want, chosen, eval_family)
    if want(0.05):
        chosen["name"] = rng.choice(P.NAMES["heldout" if eval_family and rng.random() < 0.5 else "train"])
    return chosen


def _model_for(rng: random.Random, dataset: str | None, eval_family: bool) -> str:
    """A model that suits the dataset (any model when none was chosen)."""
    if dataset == "csv" and eval_family:
        return "mlp"
    if dataset is None:
        return rng.choice(_ANY_MODEL)
    return rng.choice(_MODELS_FOR_DATASET[dataset])


def _choose_data_and_model(
    rng: random.Random, want: _Want, chosen: dict[str, Any], eval_family: bool
) -> None:
    if want(0.6):
        chosen["dataset"] = _pick(rng, "dataset")
    dataset = chosen.get("dataset")
    if want(0.4):
        chosen["model"] = _model_for(rng, dataset, eval_family)
    if dataset is None and chosen.get("model") in ("minilm", "hf") and rng.random() < 0.7:
        chosen["dataset"] = rng.choice(_TEXT)


def _choose_algorithm(rng: random.Random, want: _Want, chosen: dict[str, Any]) -> None:
    if want(0.5):
        algorithm = _pick(rng, "algorithm")
        if algorithm == "flora" and chosen.get("model") not in ("minilm", "hf"):
            algorithm = "fedavg"
        chosen["algorithm"] = algorithm


def _choose_clients(rng: random.Random, want: _Want, chosen: dict[str, Any]) -> None:
    if want(0.6):
        chosen["num_clients"] = _pick(rng, "num_clients")
    clients = chosen.get("num_clients", DEFAULT_NUM_CLIENTS)
    if want(0.3):
        if rng.random() < 0.5 and clients >= 2:
            chosen["clients_per_round"] = ("count", rng.randint(1, max(1, min(clients, 100) - 1)))
        else:
            chosen["clients_per_round"] = ("share", rng.choice(_VALUES["client_fraction"]))


def _choose_training(rng: random.Random, want: _Want, chosen: dict[str, Any]) -> None:
    for name, probability in (
        ("rounds", 0.55),
        ("local_epochs", 0.35),
        ("batch_size", 0.3),
        ("learning_rate", 0.35),
    ):
        if want(probability):
            chosen[name] = _pick(rng, name)
    if want(0.3):
        chosen["optimizer"] = rng.choice(_CHOICES["optimizer"])


def _choose_partition(rng: random.Random, want: _Want, chosen: dict[str, Any]) -> None:
    if want(0.35):
        scheme = rng.choice(_CHOICES["partition.scheme"])
        chosen["partition.scheme"] = scheme
        if scheme == "dirichlet" and rng.random() < 0.7:
            chosen["partition.alpha"] = _pick(rng, "partition.alpha")
        if scheme == "shards" and rng.random() < 0.75:
            chosen["partition.shards_per_client"] = _pick(rng, "partition.shards_per_client")


def _choose_compression(rng: random.Random, want: _Want, chosen: dict[str, Any]) -> None:
    if want(0.25):
        method = rng.choice(_CHOICES["compression.method"])
        chosen["compression.method"] = method
        if method == "topk" and rng.random() < 0.7:
            chosen["compression.ratio"] = (
                ("times", rng.choice(_TIMES)) if rng.random() < 0.12 else _pick(rng, "compression.ratio")
            )
        if method == "qsgd" and rng.random() < 0.75:
            chosen["compression.bits"] = _pick(rng, "compression.bits")
        if method != "none" and rng.random() < 0.25:
            chosen["compression.error_feedback"] = rng.choice(_CHOICES["compression.error_feedback"])
    elif want(0.02):
        chosen["compression.error_feedback"] = rng.choice(_CHOICES["compression.error_feedback"])


def _choose_lora(rng: random.Random, want: _Want, chosen: dict[str, Any]) -> None:
    text_job = (
        chosen.get("model") in ("minilm", "hf")
        or chosen.get("dataset") in _TEXT
        or chosen.get("algorithm") == "flora"
    )
    if want(0.5 if text_job else 0.03):
        chosen["lora.rank"] = _pick(rng, "lora.rank")
    if want(0.3 if text_job else 0.02):
        chosen["lora.alpha"] = _pick(rng, "lora.alpha")


def _choose_aggregation_settings(rng: random.Random, want: _Want, chosen: dict[str, Any]) -> None:
    """The settings an algorithm (or, when none is named, a setting alone) implies."""
    algorithm = chosen.get("algorithm")
    if want(0.6 if algorithm == "fedprox" else 0.05 if algorithm is None else 0):
        chosen["proximal_mu"] = _pick(rng, "proximal_mu")
    if want(0.45 if algorithm in ("fedadam", "fedyogi", "fedadagrad") else 0.1):
        chosen["server_learning_rate"] = _pick(rng, "server_learning_rate")
    if want(0.6 if algorithm == "fedavgm" else 0.04 if algorithm is None else 0):
        chosen["server_momentum"] = _pick(rng, "server_momentum")
    if want(0.5 if algorithm in ("trimmed_mean", "krum") else 0.02):
        chosen["robust.trim_fraction"] = _pick(rng, "robust.trim_fraction")


def _choose_privacy(rng: random.Random, want: _Want, chosen: dict[str, Any]) -> None:
    if want(0.12):
        numbers = rng.random() < 0.75
        if numbers:
            chosen["dp.noise_multiplier"] = _pick(rng, "dp.noise_multiplier")
            chosen["dp.clip_norm"] = _pick(rng, "dp.clip_norm")
            if rng.random() < 0.35:
                chosen["dp.delta"] = _pick(rng, "dp.delta")
        if not numbers or rng.random() < 0.4:
            chosen["dp"] = "on" if numbers or rng.random() < 0.85 else "off"


def _choose_search(rng: random.Random, want: _Want, chosen: dict[str, Any], eval_family: bool) -> None:
    # Training over-samples searches that pin fields, the hardest part of a prompt to read; the
    # held-out family keeps its mix of requests, so its scores stay comparable between models.
    if want(0.12 if eval_family else 0.15):
        if rng.random() < 0.9:
            chosen["hpo.enabled"] = "true"
            if rng.random() < 0.8:
                chosen["hpo.trials"] = _pick(rng, "hpo.trials")
            if rng.random() < 0.5:
                chosen["hpo.objective"] = rng.choice(_CHOICES["hpo.objective"])
            if rng.random() < (0.7 if eval_family else 0.8):
                chosen["hpo.fixed"] = rng.sample(sorted(P.FIELD_NAMES), rng.choice([1, 1, 2, 2, 3, 3, 4]))
        else:
            chosen["hpo.enabled"] = "false"


def expected_values(chosen: dict[str, Any], strings: dict[str, str]) -> dict[str, Any]:
    """The dotted fields (and values) the parser must produce for this request."""
    expect = _stated_values(chosen, strings)
    if chosen.get("dataset") == "csv":
        expect["dataset_path"] = strings["path"]
    _add_implied_settings(chosen, expect)
    _add_implied_privacy_and_search(chosen, expect)
    return expect


def _stated_values(chosen: dict[str, Any], strings: dict[str, str]) -> dict[str, Any]:
    """What each stated choice sets, in the order the choices were made."""
    expect: dict[str, Any] = {}
    clients = chosen.get("num_clients", DEFAULT_NUM_CLIENTS)
    for key, value in chosen.items():
        if key == "dp":
            if value == "off":
                expect["dp.noise_multiplier"] = None
                expect["dp.clip_norm"] = None
            continue
        if key in ("dataset", "algorithm") and value == "other":
            continue  # the parser warns and keeps the default
        expect[key] = _stated_value(key, value, strings, clients)
    return expect


def _stated_value(key: str, value: Any, strings: dict[str, str], clients: int) -> Any:
    if key in ("hpo.enabled", "compression.error_feedback"):
        return value == "true"
    if key == "clients_per_round":
        kind, amount = value
        return amount if kind == "count" else clients_from_share(amount, clients)
    if key == "compression.ratio" and isinstance(value, tuple):
        return 1 / value[1]
    if key == "model" and value == "hf":
        return "hf:" + strings["hf"]
    return value


def _add_implied_settings(chosen: dict[str, Any], expect: dict[str, Any]) -> None:
    """Algorithms, partition and compression settings a request implies without stating."""
    if "proximal_mu" in chosen and "algorithm" not in chosen:
        expect["algorithm"] = "fedprox"
    if "server_momentum" in chosen and "algorithm" not in chosen:
        expect["algorithm"] = "fedavgm"
    if chosen.get("partition.scheme") == "dirichlet" and "partition.alpha" not in chosen:
        expect["partition.alpha"] = VAGUE_ALPHA
    if chosen.get("partition.scheme") == "shards" and "partition.shards_per_client" not in chosen:
        expect["partition.shards_per_client"] = VAGUE_SHARDS
    if chosen.get("compression.method") == "int8":
        expect["compression.bits"] = 8


def _add_implied_privacy_and_search(chosen: dict[str, Any], expect: dict[str, Any]) -> None:
    """Documented defaults of differential privacy and of a hyperparameter search."""
    if chosen.get("dp") == "on":
        expect.setdefault("dp.noise_multiplier", DEFAULT_DP_NOISE)
        expect.setdefault("dp.clip_norm", DEFAULT_DP_CLIP_NORM)
    if "dp.noise_multiplier" in chosen and "dp.clip_norm" not in chosen:
        expect["dp.clip_norm"] = DEFAULT_DP_CLIP_NORM
    if chosen.get("hpo.enabled") == "true" and "hpo.trials" not in chosen:
        expect["hpo.trials"] = DEFAULT_HPO_TRIALS
    if "hpo.trials" in chosen:
        expect["hpo.enabled"] = True
