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
from jobspec.fields import pinnable_fields

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

# Fields a search can be told to keep fixed ("keep the dataset and rounds fixed"): every field
# HPO searches, and those the spec marks pinnable (jobspec.fields.pinnable_fields).
FIXABLE_FIELDS: tuple[str, ...] = pinnable_fields()

STRING_FIELDS = ("name", "dataset_path")

RETRAIN = "python -m intent_llm train"


# Spec values the shipped model cannot produce yet, by head: a value added to the spec (a new
# algorithm, say) needs a retrain before the parser can read it. Until then it is listed here
# (tests/intent_llm/test_labels.py checks this equals `labels_awaiting_retrain()`); the parser
# keeps working and simply never answers that value. Empty after a retrain that covers them.
AWAITING_RETRAIN: dict[str, tuple[str, ...]] = {
    # Searched by HPO but not yet pinnable by the shipped model: a prompt cannot keep these
    # fixed until the phrasings name them (training/phrasings.py FIELD_NAMES) and it is retrained.
    "fixed": (
        "compression.ratio",
        "compression.bits",
        "compression.error_feedback",
        "server_momentum",
        "robust.trim_fraction",
        "architecture",
    ),
}

Vocabulary = dict[str, tuple[str, ...]]


def head_labels() -> dict[str, list[str]]:
    """Each output head's label vocabulary as the code (the spec) defines it, in output order.

    Training uses these and the trained model records them in its config.json: they are what
    its outputs mean. At run time the decoder reads a model's outputs with the labels the model
    recorded (`check_head_labels`), so a reordered or extended enum never changes what a
    shipped model's output index means.
    """
    return {
        "intent": list(INTENT_LABELS),
        **{head: list(labels) for head, labels in ENUM_HEADS.items()},
        "fixed": list(FIXABLE_FIELDS),
        "spans": list(SPAN_LABELS),
    }


def code_vocabulary() -> Vocabulary:
    """`head_labels()` as tuples: what a model trained on the current code would record."""
    return {head: tuple(labels) for head, labels in head_labels().items()}


class LabelMismatch(ValueError):
    """A model's recorded head vocabularies cannot be read by this code without mis-reading."""


def check_head_labels(recorded: Mapping[str, Sequence[str]] | None, source: str) -> Vocabulary:
    """The vocabulary to read a model's outputs with: the one it recorded.

    A model may lack labels the code has (values added to the spec since it was trained, see
    `labels_awaiting_retrain`) and may list them in another order. It is refused when it does
    not record its labels, when it has a head the code does not decode (or lacks one), or when
    a recorded label is no longer a value or field of the spec (removed or renamed): its
    outputs would be read as something the spec no longer means.
    """
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
        if head not in recorded:
            continue
        stale = [label for label in recorded[head] if label not in labels]
        if stale:
            problems.append(f"head '{head}' has {stale}, which the spec no longer has (it has {labels})")
        repeated = sorted({label for label in recorded[head] if list(recorded[head]).count(label) > 1})
        if repeated:
            problems.append(f"head '{head}' lists {repeated} more than once")
    if problems:
        raise LabelMismatch(
            f"{source} was trained with labels intent_llm can no longer read: "
            + "; ".join(problems)
            + f". Restore the values in the spec (intent_llm/fields.py) or retrain: {RETRAIN}"
        )
    return {head: tuple(recorded[head]) for head in expected}


def labels_awaiting_retrain(recorded: Mapping[str, Sequence[str]]) -> Vocabulary:
    """The code's labels a model with vocabulary `recorded` cannot produce, by head (only
    heads that lack some): values added to the spec after it was trained."""
    missing = {
        head: tuple(label for label in labels if label not in recorded.get(head, ()))
        for head, labels in head_labels().items()
    }
    return {head: labels for head, labels in missing.items() if labels}


def _check_against_spec() -> None:
    known = spec_field_names()
    for field in (*ENUM_HEADS, *NUMBER_FIELDS, *FIXABLE_FIELDS, *STRING_FIELDS):
        if field != "dp" and field not in known:
            raise RuntimeError(f"intent_llm decodes '{field}', which JobSpec no longer has")


_check_against_spec()
