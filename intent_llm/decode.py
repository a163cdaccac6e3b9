"""From the model's predictions to a job spec that JobSpec accepts, with what was assumed.

The model says, for every enum head, which value the prompt asks for (or "unset"),
and for every number the scanner found, which field it sets (or "none"). This module
turns that into the spec, and never trusts it: a guess below the confidence
threshold, a value that breaks a rule or a combination JobSpec refuses becomes a
warning and the field keeps its default. Vague requests get documented defaults:

- "non-IID" / "label skew" without alpha: dirichlet with alpha 0.5 (VAGUE_ALPHA)
- "pathological non-IID" / "shards" without a count: 2 shards per client (VAGUE_SHARDS)
- "with differential privacy" without numbers: noise multiplier 1.0, clip norm 1.0
- "tune the hyperparameters" without a budget: 20 trials (DEFAULT_HPO_TRIALS)
- a model without a data set it fits: the first data set that takes the model

Implied settings (proximal_mu on fedavg -> fedprox, server_momentum -> fedavgm) come
from JobSpec itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import ValidationError

from jobspec import DATASETS, JobSpec, compatible_models, spec_errors

from .fields import ENUM_HEADS, NONE_LABEL, OTHER, UNSET, Vocabulary, code_vocabulary
from .normalize import NormalizedPrompt
from .numbers import NumberSpan
from .values import DEFAULT_NUM_CLIENTS, span_value

VAGUE_ALPHA = 0.5
VAGUE_SHARDS = 2
DEFAULT_DP_NOISE = 1.0
DEFAULT_DP_CLIP_NORM = 1.0
DEFAULT_HPO_TRIALS = 20
JOB_THRESHOLD = 0.5  # below this probability that the prompt asks for a job, refuse
# A prompt that sets no field must be a clear request ("start a federated run"), not a reply
# such as "thanks, that worked": without a field to go on, ask for more confidence. Counts
# alone are everyday English too ("book 20 rounds of golf for our 10 clients"), so a prompt
# that sets nothing but these needs the same confidence.
BARE_JOB_THRESHOLD = 0.9
EVERYDAY_FIELDS = frozenset(
    {"rounds", "num_clients", "clients_per_round", "local_epochs", "batch_size", "seed", "name"}
)
ENUM_CONFIDENCE = 0.3  # a head's answer below this is a warning, not a value
SPAN_CONFIDENCE = 0.3
# A number that lost its field to a more confident one takes its next likeliest field above this.
SPAN_RUNNER_UP_CONFIDENCE = 0.1
FIXED_THRESHOLD = 0.5

REFUSAL = (
    "This does not describe a federated training job, so no spec was made. "
    "Describe the job, for example: 'train a CNN on MNIST with 20 clients for 50 rounds'."
)
EMPTY = "The prompt is empty: describe the federated training job you want."


@dataclass
class Predictions:
    """What a model read from one prompt; probabilities are over the heads' labels.

    `labels` is the vocabulary the model's outputs mean (the one it recorded in its
    config.json), not necessarily the code's tables: a spec value added since the model was
    trained is simply absent, and a reordered enum keeps the model's order.
    """

    intent: np.ndarray  # over labels["intent"]
    heads: dict[str, np.ndarray]  # head -> over labels[head]
    spans: list[NumberSpan]
    span_probs: np.ndarray  # (len(spans), len(labels["spans"]))
    fixed: np.ndarray  # independent probabilities over labels["fixed"]
    labels: Vocabulary = field(default_factory=code_vocabulary)


@dataclass
class ParseResult:
    spec: dict[str, Any] | None = None
    mentioned: list[str] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (field, message)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The CLI/REST shape: the resolved spec plus "mentioned" and "warnings", or {"error"}."""
        if self.error is not None or self.spec is None:
            return {"error": self.error or REFUSAL}
        return {
            **self.spec,
            "mentioned": self.mentioned,
            "warnings": [f"{name}: {message}" for name, message in self.warnings],
        }


class _Draft:
    """The values read so far, what the prompt said, and what was assumed."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.mentioned: set[str] = set()
        self.warnings: list[tuple[str, str]] = []

    def set(self, name: str, value: Any) -> None:
        self.values[name] = value
        self.mentioned.add(name)

    def warn(self, name: str, message: str) -> None:
        self.warnings.append((name, message))

    def drop(self, name: str) -> None:
        self.values.pop(name, None)
        self.mentioned.discard(name)


def _best(probs: np.ndarray, labels: Sequence[str]) -> tuple[str, float]:
    index = int(np.argmax(probs))
    return labels[index], float(probs[index])


PathResolver = Callable[[str], str]


def decode(
    normalized: NormalizedPrompt, predictions: Predictions, resolve_path: PathResolver | None = None
) -> ParseResult:
    """The spec a prompt asks for. `resolve_path` maps the prompt's data set path to the
    file to check (a server resolves "tickets.csv" inside the user's data space); the
    answer keeps the path as the user wrote it."""
    label, probability = _best(predictions.intent, predictions.labels["intent"])
    if label != "job" or probability < JOB_THRESHOLD:
        return ParseResult(error=REFUSAL)
    draft = _Draft()
    _read_heads(draft, normalized, predictions)
    _read_numbers(draft, predictions)
    _read_fixed(draft, predictions)
    _complete(draft)
    if draft.mentioned <= EVERYDAY_FIELDS and probability < BARE_JOB_THRESHOLD:
        return ParseResult(error=REFUSAL)
    return _validate(draft, resolve_path)


def _read_heads(draft: _Draft, normalized: NormalizedPrompt, predictions: Predictions) -> None:
    strings = normalized.strings
    for head in ENUM_HEADS:
        value, probability = _best(predictions.heads[head], predictions.labels[head])
        if value == UNSET:
            continue
        if probability < ENUM_CONFIDENCE:
            draft.warn(
                head,
                f"unsure whether the prompt asks for '{value}' (confidence {probability:.2f}); kept the default",
            )
            continue
        if value == OTHER:
            draft.warn(head, f"the prompt names a {head} Flotilla does not offer; kept the default")
            continue
        if head in ("compression.error_feedback", "hpo.enabled"):
            draft.set(head, value == "true")
        elif head == "dp":
            draft.values["dp"] = value
        elif head == "model" and value == "hf":
            if strings.hf_model:
                draft.set("model", "hf:" + strings.hf_model)
            else:
                draft.warn(
                    "model", "a Hugging Face model was asked for but no model id was found; kept the default"
                )
        else:
            draft.set(head, value)
    # A named checkpoint is more specific than the head's guess of the built-in text encoder.
    if strings.hf_model and draft.values.get("model") in (None, "minilm"):
        draft.set("model", "hf:" + strings.hf_model)
    if strings.bundled_minilm and "model" not in draft.values:
        draft.set("model", "minilm")
    if strings.dataset_path:
        draft.set("dataset_path", strings.dataset_path)
        if draft.values.get("dataset") not in (None, "csv"):
            draft.warn(
                "dataset", f"a file path was given, so the data set is 'csv', not '{draft.values['dataset']}'"
            )
        draft.set("dataset", "csv")
    elif draft.values.get("dataset") == "csv":
        draft.warn("dataset_path", "a CSV data set needs a file path; kept the default data set")
        draft.drop("dataset")
    if strings.name:
        draft.set("name", strings.name)


def _read_numbers(draft: _Draft, predictions: Predictions) -> None:
    """Each field takes at most one number. The most confident numbers choose first; a number
    whose field another one already took moves to its next likeliest field ("clients=20
    rounds=60" read as two round counts gives the 20 to num_clients) if that is likely enough."""
    best: dict[str, tuple[float, NumberSpan]] = {}
    span_labels = predictions.labels["spans"]
    order = sorted(
        zip(predictions.spans, predictions.span_probs, strict=True), key=lambda item: -float(item[1].max())
    )
    for span, probs in order:
        label, probability = _best(probs, span_labels)
        if label == NONE_LABEL:
            continue
        if probability < SPAN_CONFIDENCE:
            draft.warn(
                label,
                f"unsure what '{span.text}' sets (best guess {label}, confidence {probability:.2f}); ignored it",
            )
            continue
        if label not in best:
            best[label] = (probability, span)
            continue
        runner_up = next(
            (
                (span_labels[index], float(probs[index]))
                for index in np.argsort(-probs)[1:]
                if span_labels[index] not in best
            ),
            None,
        )
        if runner_up and runner_up[0] != NONE_LABEL and runner_up[1] >= SPAN_RUNNER_UP_CONFIDENCE:
            best[runner_up[0]] = (runner_up[1], span)
            draft.warn(
                runner_up[0],
                f"'{span.text}' looked like {label}, which '{best[label][1].text}' sets; read it as {runner_up[0]}",
            )
        else:
            draft.warn(
                label, f"several numbers for this field; used '{best[label][1].text}', ignored '{span.text}'"
            )
    # num_clients first: a share of clients per round is counted against it.
    for name in sorted(best, key=lambda item: item != "num_clients"):
        span = best[name][1]
        value, problem = span_value(name, span, draft.values.get("num_clients", DEFAULT_NUM_CLIENTS))
        if problem:
            draft.warn(name, problem + "; kept the default")
            continue
        draft.set(name, value)


def _read_fixed(draft: _Draft, predictions: Predictions) -> None:
    fixed = [
        name
        for name, p in zip(predictions.labels["fixed"], predictions.fixed, strict=True)
        if p >= FIXED_THRESHOLD
    ]
    if fixed:
        draft.values["hpo.fixed"] = fixed


def _complete(draft: _Draft) -> None:
    """Vague requests, implied partners and documented defaults."""
    _complete_partition(draft)
    _complete_compression(draft)
    _complete_dp(draft)
    _complete_hpo(draft)
    _complete_dataset(draft)


def _complete_partition(draft: _Draft) -> None:
    """A scheme implied by its parameter, vague defaults, and another scheme's parameters dropped."""
    values = draft.values
    if "partition.alpha" in values and "partition.scheme" not in values:
        draft.set("partition.scheme", "dirichlet")
    if "partition.shards_per_client" in values and "partition.scheme" not in values:
        draft.set("partition.scheme", "shards")
    scheme = values.get("partition.scheme")
    if scheme == "dirichlet" and "partition.alpha" not in values:
        draft.set("partition.alpha", VAGUE_ALPHA)
        draft.warn(
            "partition.alpha", f"no Dirichlet alpha given; assumed {VAGUE_ALPHA} (moderate label skew)"
        )
    if scheme == "shards" and "partition.shards_per_client" not in values:
        draft.set("partition.shards_per_client", VAGUE_SHARDS)
        draft.warn(
            "partition.shards_per_client", f"no shard count given; assumed {VAGUE_SHARDS} shards per client"
        )
    if scheme != "dirichlet" and "partition.alpha" in values:
        draft.warn(
            "partition.alpha", f"alpha only applies to a dirichlet partition, not '{scheme}'; ignored it"
        )
        draft.drop("partition.alpha")
    if scheme != "shards" and "partition.shards_per_client" in values:
        draft.warn(
            "partition.shards_per_client",
            f"shards only apply to the 'shards' partition, not '{scheme}'; ignored it",
        )
        draft.drop("partition.shards_per_client")


def _complete_compression(draft: _Draft) -> None:
    """A compression method implied by its parameter, and parameters of another method dropped."""
    values = draft.values
    if "compression.bits" in values and "compression.method" not in values:
        draft.set("compression.method", "int8" if values["compression.bits"] == 8 else "qsgd")
    if values.get("compression.method") == "int8" and values.get("compression.bits", 8) != 8:
        draft.set("compression.method", "qsgd")  # "4-bit quantisation" is QSGD; int8 is 8 bits only
    if "compression.ratio" in values and "compression.method" not in values:
        draft.set("compression.method", "topk")
    method = values.get("compression.method")
    for name, wanted in (("compression.ratio", "topk"), ("compression.bits", ("int8", "qsgd"))):
        if name in values and method not in wanted:
            draft.warn(name, f"applies to {wanted} compression, not '{method}'; ignored it")
            draft.drop(name)


def _complete_dp(draft: _Draft) -> None:
    """Differential privacy switched off, or on with its documented defaults."""
    values = draft.values
    dp = values.pop("dp", None)
    if dp == "off":
        draft.set("dp.noise_multiplier", None)
        draft.set("dp.clip_norm", None)
        draft.drop("dp.delta")
    elif dp == "on" or "dp.noise_multiplier" in values or "dp.clip_norm" in values:
        if "dp.noise_multiplier" not in values:
            draft.set("dp.noise_multiplier", DEFAULT_DP_NOISE)
            draft.warn("dp.noise_multiplier", f"no noise multiplier given; assumed {DEFAULT_DP_NOISE}")
        if "dp.clip_norm" not in values:
            draft.set("dp.clip_norm", DEFAULT_DP_CLIP_NORM)
            draft.warn("dp.clip_norm", f"no clipping norm given; assumed {DEFAULT_DP_CLIP_NORM}")


def _complete_hpo(draft: _Draft) -> None:
    """A search implied by its budget, the default budget, and search options without a search dropped."""
    values = draft.values
    if "hpo.trials" in values and "hpo.enabled" not in values:
        draft.set("hpo.enabled", True)
    if values.get("hpo.enabled") is True and "hpo.trials" not in values:
        draft.set("hpo.trials", DEFAULT_HPO_TRIALS)
        draft.warn("hpo.trials", f"no trial budget given; assumed {DEFAULT_HPO_TRIALS} trials")
    if values.get("hpo.enabled") is not True:
        for name in ("hpo.objective", "hpo.fixed"):
            if name in values:
                draft.warn(
                    name,
                    "only applies to a hyper-parameter search, which the prompt does not ask for; ignored it",
                )
                draft.drop(name)
    elif "hpo.fixed" in values:
        draft.mentioned.add("hpo.fixed")


def _complete_dataset(draft: _Draft) -> None:
    """The first data set that takes the named model, when none is named and the default does not fit."""
    values = draft.values
    model = values.get("model")
    if model and "dataset" not in values:
        fitting = [name for name in DATASETS if name != "csv" and _fits(model, name)]
        default = JobSpec.model_fields["dataset"].default
        if fitting and default not in fitting:
            draft.set("dataset", fitting[0])
            draft.warn(
                "dataset", f"no data set named; '{fitting[0]}' is the first that takes model '{model}'"
            )


def validate_values(values: dict[str, Any], resolve_path: PathResolver | None = None) -> ParseResult:
    """Dotted field values (a pasted spec, a language model's answer) validated like the model's."""
    draft = _Draft()
    for name, value in values.items():
        draft.set(name, value)
    return _validate(draft, resolve_path)


def _fits(model: str, dataset: str) -> bool:
    allowed = compatible_models(dataset)
    return model in allowed or (model.startswith("hf:") and "hf:" in allowed)


def nest_fields(values: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for name, value in values.items():
        target = nested
        *parents, leaf = name.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    return nested


def _validate(draft: _Draft, resolve_path: PathResolver | None = None) -> ParseResult:
    """Validate with JobSpec; each refused value becomes a warning and goes back to its default."""
    for _ in range(len(draft.values) + 1):
        values = dict(draft.values)
        written_path = values.get("dataset_path")
        if resolve_path is not None and isinstance(written_path, str):
            values["dataset_path"] = resolve_path(written_path)
        try:
            spec = JobSpec.model_validate(nest_fields(values))
        except ValidationError as exc:
            if not _drop_refused(draft, spec_errors(exc)):
                break
            continue
        resolved = spec.model_dump(mode="json")
        if written_path is not None:
            resolved["dataset_path"] = written_path
        mentioned = set(draft.mentioned)
        if (
            spec.algorithm != "fedavg"
            and draft.values.get("algorithm") is None
            and ("proximal_mu" in mentioned or "server_momentum" in mentioned)
        ):
            mentioned.add("algorithm")  # implied: mu means fedprox, server momentum fedavgm
        return ParseResult(spec=resolved, mentioned=sorted(mentioned), warnings=draft.warnings)
    draft.warn("spec", "the prompt's settings could not be combined into a valid job; using the defaults")
    return ParseResult(spec=JobSpec().model_dump(mode="json"), mentioned=[], warnings=draft.warnings)


def _drop_refused(draft: _Draft, errors: list[dict[str, str]]) -> bool:
    dropped = False
    for error in errors:
        name = error["field"]
        related = [
            key
            for key in draft.values
            if key == name or key.startswith(name + ".") or name.startswith(key + ".")
        ]
        if name == "dataset_path":
            related += [key for key in ("dataset",) if key in draft.values]
        if name == "model" and "model" not in draft.values and "dataset" in draft.values:
            related.append("dataset")  # the named data set does not take the default model
        for key in related:
            draft.warn(key, f"{error['message']}; kept the default")
            draft.drop(key)
            dropped = True
    return dropped
