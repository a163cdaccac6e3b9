"""The search space of a study, derived from its base JobSpec.

What is searched: the client's training (learning_rate on a log scale, with a
range per optimizer family; local_epochs, batch_size, optimizer), the rounds,
clients_per_round, the algorithm and its own knobs (proximal_mu,
server_learning_rate, server_momentum, robust.trim_fraction), the compression
settings when the base job compresses, LoRA's rank for adapter models, and the
architecture (NAS) of `mlp` (hidden layer widths) and `cnn` (channels, kernel).

What is never searched, because it describes the problem rather than a way to
solve it: the data (dataset, dataset_path, partition), the federation
(num_clients, selection and its scheduling knobs), privacy (dp), the attack
under evaluation, the model family, the seed and the spec's name. Compression is
neither switched on nor off: the objective measures accuracy or loss, not
bytes, so a search would only ever remove it.

`hpo.fixed` pins exactly the fields it lists: a listed field keeps its base
value in every trial, and listing a group ("compression") pins all its fields.
Ranges always contain the base value, so the base spec is itself a point of
the space (the study tries it first).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from jobspec import ADAPTIVE_ALGORITHMS, DP_ALGORITHMS, Architecture, JobSpec, flatten, spec_diff
from jobspec.fields import enum_values, searched_fields
from orchestrator.fl.models import DEFAULT_CNN_CHANNELS, DEFAULT_CNN_KERNEL, DEFAULT_MLP_HIDDEN
from orchestrator.fl.strategies import STRATEGIES

ALGORITHM_KNOBS = ("proximal_mu", "server_learning_rate", "server_momentum")
COMPRESSION_KNOBS = ("compression.ratio", "compression.bits")
GENERAL_ALGORITHMS = ("fedavg", "fedprox", "fedavgm", "fedadam", "fedyogi", "fedadagrad", "scaffold")
ROBUST_ALGORITHMS = ("median", "trimmed_mean", "krum")
LORA_ALGORITHMS = ("fedavg", "fedprox", "fedavgm", "fedadam", "flora")
COMPRESSING_METHODS = ("topk", "int8", "qsgd")
BATCH_SIZES = (16, 32, 64, 128)
MLP_WIDTHS = (32, 64, 128, 256, 512)
CNN_CHANNELS = (8, 16, 32, 64, 128)
CNN_KERNELS = (3, 5)
LORA_RANKS = (4, 8, 16, 32)
MAX_LAYERS = 3
MAX_LOCAL_EPOCHS = 5
_EMPTY = Architecture()
# Every field a search may change (a group name covers its fields): what `hpo.fixed` can
# usefully pin, and the choices the new-job form offers for it; marked on the spec's fields.
SEARCHED_FIELDS = searched_fields()
OPTIMIZERS = enum_values("optimizer")
# Client learning-rate ranges (log scale) by optimizer family and model kind.
LEARNING_RATE_RANGES = {
    ("sgd", "small"): (1e-3, 0.5),
    ("adaptive", "small"): (1e-4, 3e-2),
    ("sgd", "large"): (1e-4, 0.1),
    ("adaptive", "large"): (1e-5, 1e-2),
}

DimensionKind = Literal["float", "int", "categorical"]
Role = Literal["value", "depth", "width"]
Condition = tuple[tuple[str, tuple[Any, ...]], ...]


class Suggester(Protocol):
    """The part of `optuna.Trial` the space samples through."""

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...

    def suggest_int(self, name: str, low: int, high: int) -> int: ...

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


@dataclass(frozen=True)
class Dimension:
    """One sampled parameter. `param` is its unique name in the study, `field` the spec field it sets.

    A list field (architecture.hidden, architecture.channels) is sampled as a depth
    parameter and one width parameter per layer (`role`, `layer`). `when` lists
    (param, allowed values) that must all hold for the dimension to be sampled.
    """

    param: str
    field: str
    kind: DimensionKind
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()
    when: Condition = ()
    role: Role = "value"
    layer: int = 0

    def active(self, params: Mapping[str, Any]) -> bool:
        return all(param in params and params[param] in allowed for param, allowed in self.when)

    def suggest(self, trial: Suggester) -> Any:
        if self.kind == "float":
            return trial.suggest_float(self.param, self.low, self.high, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(self.param, int(self.low), int(self.high))
        return trial.suggest_categorical(self.param, list(self.choices))

    def contains(self, value: Any) -> bool:
        if self.kind == "categorical":
            return value in self.choices
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        if self.kind == "int" and int(value) != value:
            return False
        return self.low <= value <= self.high

    def describe(self) -> str:
        if self.kind == "categorical":
            text = f"{self.param}: one of {list(self.choices)}"
        else:
            scale = ", log scale" if self.log else ""
            number = f"{self.low:g} ... {self.high:g}"
            text = f"{self.param}: {'integer' if self.kind == 'int' else 'number'} {number}{scale}"
        if self.when:
            conditions = " and ".join(f"{param} in {list(values)}" for param, values in self.when)
            text += f" (only when {conditions})"
        return text


class SearchSpace:
    """The dimensions a study samples around `base`, and the mapping from parameters to specs."""

    def __init__(self, base: JobSpec, dimensions: list[Dimension]) -> None:
        self.base = base
        self.dimensions = dimensions
        self._by_param = {dim.param: dim for dim in dimensions}

    @property
    def fields(self) -> list[str]:
        """The spec fields some dimension may change, in sampling order."""
        return list(dict.fromkeys(dim.field for dim in self.dimensions))

    def sample(self, trial: Suggester) -> dict[str, Any]:
        """Parameters for one trial (define-by-run: inactive dimensions are not sampled)."""
        params: dict[str, Any] = {}
        for dim in self.dimensions:
            if dim.active(params):
                params[dim.param] = dim.suggest(trial)
        return params

    def changes(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Spec field -> value for a parameter set (list fields assembled from depth and widths)."""
        changes: dict[str, Any] = {}
        depths = {dim.field: int(params[dim.param]) for dim in self.dimensions if dim.role == "depth"}
        for dim in self.dimensions:
            if dim.param not in params:
                continue
            if dim.role == "value":
                changes[dim.field] = params[dim.param]
            elif dim.role == "width" and dim.layer <= depths[dim.field]:
                changes.setdefault(dim.field, []).append(int(params[dim.param]))
        return changes

    def spec_for(self, params: Mapping[str, Any]) -> JobSpec:
        return apply_changes(self.base, self.changes(params))

    def params_for(self, spec: JobSpec) -> dict[str, Any] | None:
        """The parameters that give `spec`, or None when the space cannot express it exactly."""
        values = flatten(spec.model_dump(mode="json"))
        params: dict[str, Any] = {}
        for dim in self.dimensions:
            if not dim.active(params):
                continue
            value = _value_for(dim, values, spec)
            if value is None or not dim.contains(value):
                return None
            params[dim.param] = value
        if spec_diff(self.spec_for(params), spec):
            return None
        return params

    def describe(self) -> list[str]:
        return [dim.describe() for dim in self.dimensions]


def is_pinned(name: str, fixed: Iterable[str]) -> bool:
    """Whether `hpo.fixed` pins a dotted field, directly or through its group."""
    return any(name == pin or name.startswith(pin + ".") for pin in fixed)


def search_space(base: JobSpec) -> SearchSpace:
    """Derive the space around `base`, leaving every field `base.hpo.fixed` lists untouched."""
    builder = _SpaceBuilder(base)
    builder.training()
    builder.algorithm()
    builder.compression()
    builder.architecture()
    return SearchSpace(base, builder.dimensions)


class _SpaceBuilder:
    def __init__(self, base: JobSpec) -> None:
        self.base = base
        self.fixed = list(base.hpo.fixed)
        self.dimensions: list[Dimension] = []
        self._searched: set[str] = set()

    def add(self, dim: Dimension) -> None:
        if is_pinned(dim.field, self.fixed):
            return
        self.dimensions.append(dim)
        self._searched.add(dim.param)

    def condition(self, param: str, allowed: tuple[Any, ...], base_value: Any) -> Condition | None:
        """A `when` clause on `param` if it is searched; otherwise () when the base value
        satisfies it and None when it never can (the dimension is then left out)."""
        if param in self._searched:
            reachable = tuple(value for value in allowed if value in self._choices(param))
            return ((param, reachable),) if reachable else None
        return () if base_value in allowed else None

    def _choices(self, param: str) -> tuple[Any, ...]:
        return next(dim.choices for dim in self.dimensions if dim.param == param)

    def training(self) -> None:
        base = self.base
        self.add(_int("rounds", max(1, base.rounds // 2), base.rounds * 2, base.rounds))
        self.add(_int("local_epochs", 1, MAX_LOCAL_EPOCHS, base.local_epochs))
        self.add(_categorical("batch_size", BATCH_SIZES, base.batch_size))
        self.add(_categorical("optimizer", OPTIMIZERS, base.optimizer))
        size = "large" if base.uses_lora or base.model == "resnet18" else "small"
        assert base.learning_rate is not None
        adaptive = tuple(name for name in OPTIMIZERS if name != "sgd")
        for family, optimizers in (("sgd", ("sgd",)), ("adaptive", adaptive)):
            when = self.condition("optimizer", optimizers, base.optimizer)
            if when is None:
                continue
            low, high = LEARNING_RATE_RANGES[(family, size)]
            if base.optimizer in optimizers:
                low, high = min(low, base.learning_rate), max(high, base.learning_rate)
            self.add(
                Dimension(f"learning_rate.{family}", "learning_rate", "float", low, high, log=True, when=when)
            )
        if base.num_clients > 1:
            assert base.clients_per_round is not None
            low = min(max(1, math.ceil(0.3 * base.num_clients)), base.clients_per_round)
            self.add(_int("clients_per_round", low, base.num_clients, base.clients_per_round))
        if base.uses_lora:
            self.add(_categorical("lora.rank", LORA_RANKS, base.lora.rank))

    def algorithm(self) -> None:
        base = self.base
        family: tuple[str, ...]
        if base.uses_lora:
            family = LORA_ALGORITHMS
        elif base.algorithm in ROBUST_ALGORITHMS or base.attack is not None:
            family = ROBUST_ALGORITHMS
        else:
            family = GENERAL_ALGORITHMS
        if base.lora.heterogeneous_ranks:
            family = ("flora",)  # only stacking combines adapters of different ranks
        if base.dp.enabled:
            family = tuple(name for name in family if name in DP_ALGORITHMS)
        available = tuple(name for name in family if name in STRATEGIES or name == base.algorithm)
        self.add(_categorical("algorithm", available, base.algorithm))

        def knob(param: str, algorithms: tuple[str, ...], low: float, high: float, log: bool) -> None:
            when = self.condition("algorithm", algorithms, base.algorithm)
            if when is None:
                return
            field = param.split("@")[0]
            current = getattr(base, field) if base.algorithm in algorithms else None
            if isinstance(current, int | float):
                low, high = min(low, current), max(high, current)
            self.add(Dimension(param, field, "float", low, high, log=log, when=when))

        knob("proximal_mu", ("fedprox",), 1e-3, 1.0, log=True)
        knob("server_momentum", ("fedavgm",), 0.5, 0.95, log=False)
        knob("server_learning_rate@momentum", ("fedavgm",), 0.1, 2.0, log=True)
        knob("server_learning_rate@adaptive", ADAPTIVE_ALGORITHMS, 1e-3, 0.3, log=True)
        when = self.condition("algorithm", ("trimmed_mean", "krum"), base.algorithm)
        if when is not None:
            self.add(
                Dimension(
                    "robust.trim_fraction",
                    "robust.trim_fraction",
                    "float",
                    min(0.05, base.robust.trim_fraction),
                    max(0.4, base.robust.trim_fraction),
                    when=when,
                )
            )

    def compression(self) -> None:
        settings = self.base.compression
        if settings.method == "none":
            return
        self.add(_categorical("compression.method", COMPRESSING_METHODS, settings.method))
        ratio_when = self.condition("compression.method", ("topk",), settings.method)
        if ratio_when is not None:
            ratio = settings.ratio or 0.1
            self.add(
                Dimension(
                    "compression.ratio",
                    "compression.ratio",
                    "float",
                    min(0.01, ratio),
                    max(0.5, ratio),
                    log=True,
                    when=ratio_when,
                )
            )
        bits_when = self.condition("compression.method", ("qsgd",), settings.method)
        if bits_when is not None:
            bits = settings.bits or 8
            self.add(
                Dimension(
                    "compression.bits", "compression.bits", "int", min(2, bits), max(8, bits), when=bits_when
                )
            )
        feedback_when = self.condition("compression.method", ("topk", "qsgd"), settings.method)
        if feedback_when is not None:
            self.add(
                Dimension(
                    "compression.error_feedback",
                    "compression.error_feedback",
                    "categorical",
                    choices=(True, False),
                    when=feedback_when,
                )
            )

    def architecture(self) -> None:
        base, arch = self.base, self.base.architecture
        if base.model == "mlp":
            hidden = list((arch and arch.hidden) or DEFAULT_MLP_HIDDEN)
            self.layers("architecture.hidden", hidden, MLP_WIDTHS)
        elif base.model == "cnn":
            channels = list((arch and arch.channels) or DEFAULT_CNN_CHANNELS)
            self.layers("architecture.channels", channels, CNN_CHANNELS)
            kernel = (arch and arch.kernel) or DEFAULT_CNN_KERNEL
            self.add(_categorical("architecture.kernel", CNN_KERNELS, kernel))

    def layers(self, field: str, sizes: list[int], widths: tuple[int, ...]) -> None:
        if is_pinned(field, self.fixed):
            return
        depth = f"{field}.layers"
        max_layers = max(MAX_LAYERS, len(sizes))
        self.add(Dimension(depth, field, "int", 1, max_layers, role="depth"))
        for layer in range(1, max_layers + 1):
            choices = _with(widths, sizes[layer - 1]) if layer <= len(sizes) else widths
            when = ((depth, tuple(range(layer, max_layers + 1))),)
            self.add(
                Dimension(
                    f"{field}.{layer}",
                    field,
                    "categorical",
                    choices=choices,
                    when=when,
                    role="width",
                    layer=layer,
                )
            )


def apply_changes(base: JobSpec, changes: Mapping[str, Any]) -> JobSpec:
    """`base` with dotted-field changes applied, validated (raises pydantic's ValidationError).

    Knobs that belong to the base's algorithm or compression method go back to the
    new one's defaults when it changes, unless the changes set them or `hpo.fixed`
    pins them. A list architecture equal to the model's default stays unset.
    """
    data = base.model_dump(mode="json")
    fixed = base.hpo.fixed
    if changes.get("algorithm", base.algorithm) != base.algorithm:
        for knob in ALGORITHM_KNOBS:
            if knob not in changes and not is_pinned(knob, fixed):
                data[knob] = None
    if changes.get("compression.method", base.compression.method) != base.compression.method:
        for knob in COMPRESSION_KNOBS:
            if knob not in changes and not is_pinned(knob, fixed):
                _set_dotted(data, knob, None)
    for name, value in changes.items():
        _set_dotted(data, name, value)
    data["architecture"] = _unset_defaults(data.get("architecture"), base)
    return JobSpec.model_validate(data)


def trial_spec(spec: JobSpec, *, validation_fraction: float) -> JobSpec:
    """The plain job a trial runs: no HPO of its own, comparing on a held-out validation split."""
    data = spec.model_dump(mode="json")
    data["hpo"] = {"objective": spec.hpo.objective}
    data["validation_fraction"] = validation_fraction
    return JobSpec.model_validate(data)


def _unset_defaults(arch: dict[str, Any] | None, base: JobSpec) -> dict[str, Any] | None:
    """Leave unset the architecture fields the base left unset when the trial's value is the default."""
    if not arch:
        return None
    defaults: dict[str, Any] = {"hidden": DEFAULT_MLP_HIDDEN} if base.model == "mlp" else {}
    if base.model == "cnn":
        defaults = {"channels": DEFAULT_CNN_CHANNELS, "kernel": DEFAULT_CNN_KERNEL}
    unset = {key for key, value in (base.architecture or _EMPTY).model_dump().items() if value is None}
    cleaned = {
        key: (None if key in unset and value == defaults.get(key) else value) for key, value in arch.items()
    }
    return cleaned if any(value is not None for value in cleaned.values()) else None


def _set_dotted(data: dict[str, Any], name: str, value: Any) -> None:
    *parents, leaf = name.split(".")
    node = data
    for part in parents:
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
    node[leaf] = value


def _value_for(dim: Dimension, values: Mapping[str, Any], spec: JobSpec) -> Any:
    arch = spec.architecture
    if dim.field == "architecture.kernel":
        return (arch and arch.kernel) or DEFAULT_CNN_KERNEL
    if dim.role == "value":
        return values.get(dim.field)
    if dim.field == "architecture.hidden":
        sizes = list((arch and arch.hidden) or DEFAULT_MLP_HIDDEN)
    else:
        sizes = list((arch and arch.channels) or DEFAULT_CNN_CHANNELS)
    if dim.role == "depth":
        return len(sizes)
    return sizes[dim.layer - 1] if dim.layer <= len(sizes) else None


def _int(name: str, low: int, high: int, base_value: int) -> Dimension:
    return Dimension(name, name, "int", min(low, base_value), max(high, base_value))


def _categorical(name: str, choices: tuple[Any, ...], base_value: Any) -> Dimension:
    return Dimension(name, name, "categorical", choices=_with(choices, base_value))


def _with(choices: tuple[Any, ...], value: Any) -> tuple[Any, ...]:
    return choices if value in choices else (*choices, value)
