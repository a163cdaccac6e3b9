"""What the intent model decodes, taken from the JobSpec rather than re-declared.

Enum heads take their values from the spec's `Literal` annotations; number fields are
the spec's int/float fields of the contract. The parser decodes the contract's fields
(jobspec.md); the spec's extension fields keep their defaults.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
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

RETRAIN = "python -m intent_llm train"


def head_labels() -> dict[str, list[str]]:
    """Each output head's label vocabulary, in the order of its outputs.

    A trained model records these in its config.json: they are what its outputs mean, and
    they come from the spec's `Literal` order, so a reordered or changed enum must not
    silently change what a shipped model says (`check_head_labels`).
    """
    return {
        "intent": list(INTENT_LABELS),
        **{head: list(labels) for head, labels in ENUM_HEADS.items()},
        "fixed": list(FIXABLE_FIELDS),
        "spans": list(SPAN_LABELS),
    }


class LabelMismatch(ValueError):
    """A model's recorded head vocabularies are not the ones this code decodes with."""


def check_head_labels(recorded: Mapping[str, Sequence[str]] | None, source: str) -> None:
    """Refuse a model whose heads were trained on other labels (or another order) than the code's."""
    if recorded is None:
        raise LabelMismatch(
            f"{source} does not record its heads' label vocabularies ('labels'); retrain: {RETRAIN}"
        )
    expected = head_labels()
    problems = []
    for head in sorted(set(expected) - set(recorded)):
        problems.append(f"head '{head}' is not recorded")
    for head in sorted(set(recorded) - set(expected)):
        problems.append(f"head '{head}' is recorded but not decoded")
    for head, labels in expected.items():
        if head in recorded and list(recorded[head]) != labels:
            problems.append(f"head '{head}': {_label_difference(list(recorded[head]), labels)}")
    if problems:
        raise LabelMismatch(
            f"{source} was trained with other label vocabularies than intent_llm decodes with: "
            + "; ".join(problems)
            + f". Restore the labels in intent_llm/fields.py (and the spec's Literal order) or retrain: {RETRAIN}"
        )


def _label_difference(model: list[str], code: list[str]) -> str:
    only_model = [label for label in model if label not in code]
    only_code = [label for label in code if label not in model]
    parts = []
    if only_model:
        parts.append(f"the model has {only_model} which the code lacks")
    if only_code:
        parts.append(f"the code has {only_code} which the model lacks")
    if not parts:
        moved = [
            f"{index}: model {a!r}, code {b!r}"
            for index, (a, b) in enumerate(zip(model, code, strict=False))
            if a != b
        ]
        parts.append("same labels in another order (" + ", ".join(moved) + ")")
    return f"model {model} vs code {code}: " + " and ".join(parts)


def _check_against_spec() -> None:
    known = spec_field_names()
    for field in (*ENUM_HEADS, *NUMBER_FIELDS, *FIXABLE_FIELDS, *STRING_FIELDS):
        if field != "dp" and field not in known:
            raise RuntimeError(f"intent_llm decodes '{field}', which JobSpec no longer has")


_check_against_spec()
