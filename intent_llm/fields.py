"""What the intent model decodes, taken from the JobSpec rather than re-declared.

Enum heads take their values from the spec's `Literal` annotations; number fields are
the spec's int/float fields of the contract. The parser decodes the contract's fields
(jobspec.md); the spec's extension fields keep their defaults.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel

from jobspec import BUILTIN_MODELS, JobSpec, spec_field_names

UNSET = "unset"
OTHER = "other"  # a data set or algorithm Flotilla does not have ("imagenet", "fednova")


def _annotation(dotted: str) -> Any:
    model: type[BaseModel] = JobSpec
    *parents, leaf = dotted.split(".")
    for part in parents:
        model = model.model_fields[part].annotation  # type: ignore[assignment]
    return model.model_fields[leaf].annotation


def literal_values(dotted: str) -> tuple[str, ...]:
    """The allowed values of an enum field, from its `Literal` annotation."""
    return tuple(typing.get_args(_annotation(dotted)))


def _number_type(dotted: str) -> type:
    annotation = _annotation(dotted)
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)] or [annotation]
    return int if args[0] is int else float


# Heads that read a whole prompt: each has "unset" (the prompt does not say) first.
ENUM_HEADS: dict[str, tuple[str, ...]] = {
    "dataset": (UNSET, *literal_values("dataset"), OTHER),
    "model": (UNSET, *BUILTIN_MODELS, "hf"),
    "algorithm": (UNSET, *literal_values("algorithm"), OTHER),
    "optimizer": (UNSET, *literal_values("optimizer")),
    "partition.scheme": (UNSET, *literal_values("partition.scheme")),
    "compression.method": (UNSET, *literal_values("compression.method")),
    "compression.error_feedback": (UNSET, "true", "false"),
    "selection": (UNSET, *literal_values("selection")),
    "hpo.enabled": (UNSET, "true", "false"),
    "hpo.objective": (UNSET, *literal_values("hpo.objective")),
    # Not a spec field: "with differential privacy" without numbers asks for DP at defaults.
    "dp": (UNSET, "on", "off"),
}
INTENT_LABELS = ("refuse", "job")

# Number fields of the contract; the scanner finds numbers, the model assigns each one.
NUMBER_FIELDS: tuple[str, ...] = (
    "num_clients",
    "clients_per_round",
    "rounds",
    "local_epochs",
    "batch_size",
    "learning_rate",
    "server_learning_rate",
    "server_momentum",
    "proximal_mu",
    "partition.alpha",
    "partition.shards_per_client",
    "compression.ratio",
    "compression.bits",
    "lora.rank",
    "lora.alpha",
    "robust.trim_fraction",
    "dp.noise_multiplier",
    "dp.clip_norm",
    "dp.delta",
    "seed",
    "hpo.trials",
)
NONE_LABEL = "none"  # a number that sets no field ("on 4 GPUs", "cifar 10")
SPAN_LABELS: tuple[str, ...] = (NONE_LABEL, *NUMBER_FIELDS)
INT_FIELDS = frozenset(field for field in NUMBER_FIELDS if _number_type(field) is int)

# Fields a search can be told to keep fixed ("keep the dataset and rounds fixed").
FIXABLE_FIELDS: tuple[str, ...] = (
    "dataset",
    "model",
    "algorithm",
    "num_clients",
    "clients_per_round",
    "rounds",
    "local_epochs",
    "batch_size",
    "learning_rate",
    "optimizer",
    "partition.scheme",
    "partition.alpha",
    "compression.method",
    "selection",
    "lora.rank",
    "proximal_mu",
    "server_learning_rate",
    "seed",
)

STRING_FIELDS = ("name", "dataset_path")


def _check_against_spec() -> None:
    known = spec_field_names()
    for field in (*ENUM_HEADS, *NUMBER_FIELDS, *FIXABLE_FIELDS, *STRING_FIELDS):
        if field != "dp" and field not in known:
            raise RuntimeError(f"intent_llm decodes '{field}', which JobSpec no longer has")


_check_against_spec()
