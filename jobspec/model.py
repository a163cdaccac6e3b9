"""The job spec: the one contract every part of Flotilla speaks.

Implements ../shared/design/jobspec.md. Every field is optional on input; `null`
means "the documented default for this job" and is resolved here, so a validated
spec always shows the values the job runs with. Validating a resolved spec again
gives the same spec.

Errors always name the field: use `spec_errors(exc)` to turn a pydantic
`ValidationError` into `[{"field": "partition.alpha", "message": "..."}]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .catalogue import CATALOGUE

SPEC_VERSION: Literal[1] = 1

Dataset = Literal["digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "sst2", "ag_news", "csv"]
Algorithm = Literal[
    "fedavg",
    "fedprox",
    "fedavgm",
    "fedadam",
    "fedyogi",
    "fedadagrad",
    "scaffold",
    "krum",
    "median",
    "trimmed_mean",
    "flora",
]
Optimizer = Literal["sgd", "adam", "adamw"]
Selection = Literal["random", "round_robin", "oort", "power_of_choice", "deadline"]
AttackKind = Literal["sign_flip", "gaussian", "scale", "label_flip"]

DATASETS: tuple[str, ...] = Dataset.__args__  # type: ignore[attr-defined]
BUILTIN_MODELS = ("mlp", "cnn", "resnet18", "minilm")
ADAPTIVE_ALGORITHMS = ("fedadam", "fedyogi", "fedadagrad")
# Client-level DP noises a mean of clipped updates; these algorithms aggregate exactly that.
DP_ALGORITHMS = ("fedavg", "fedprox", "fedavgm", "fedadam", "fedyogi", "fedadagrad")

# Defaults the contract leaves to "the documented default for this job".
DEFAULT_TOPK_RATIO = 0.1
DEFAULT_QSGD_BITS = 8
DEFAULT_ATTACK_SCALE = {"sign_flip": 4.0, "gaussian": 1.0, "scale": 10.0, "label_flip": None}


# The new-job form's sections, in the order it shows them; each top-level field names its
# section in its `Meta`.
FORM_GROUPS = (
    "Job",
    "Data",
    "Model",
    "Algorithm",
    "Clients",
    "Training",
    "Compression",
    "Scheduling",
    "Privacy",
    "LoRA",
    "Robustness and attacks",
    "Architecture (NAS)",
    "Hyper-parameter search",
)


@dataclass(frozen=True)
class Meta:
    """What the rest of Flotilla derives from a field (see jobspec.fields)."""

    group: str = ""  # the form section of a top-level field, one of FORM_GROUPS
    searched: bool = False  # HPO may change it, so `hpo.fixed` can pin it
    # A prompt may name it as held fixed ("keep the dataset fixed") though HPO never changes it:
    # pinning it is a no-op the parser still reads. Searched fields are pinnable anyway.
    pinnable: bool = False


SEARCHED = Meta(searched=True)
PINNABLE = Meta(pinnable=True)


def rule_error(field: str, message: str) -> PydanticCustomError:
    """A cross-field rule violation that still names its field."""
    return PydanticCustomError("spec_rule", "{message}", {"field": field, "message": message})


# numpy's seeds (partitioning, sampling) take 0 ... 2**32 - 1.
MAX_SEED = 2**32 - 1


def _nul_free(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, list | tuple):
        return all(_nul_free(item) for item in value)
    return True


class _Strict(BaseModel):
    """What every part of the spec refuses, derived for all its fields rather than listed:
    unknown keys, a non-finite float (NaN, infinity: JSON has none, PostgreSQL's jsonb
    refuses them) and a NUL character in any string (PostgreSQL text refuses it)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if not _nul_free(value):
            raise PydanticCustomError("nul_character", "must not contain a NUL character (\\x00)")
        return value


class _Part(_Strict):
    pass


class Partition(_Part):
    scheme: Annotated[Literal["iid", "dirichlet", "shards"], PINNABLE] = Field(
        default="iid",
        description="How the data is split over clients: iid, dirichlet (label skew) or shards "
        "(each client holds a few label-sorted shards).",
    )
    alpha: Annotated[float | None, PINNABLE] = Field(
        default=None,
        gt=0,
        description="Dirichlet concentration: smaller is more skewed (0.1 strong, 10 mild).",
    )
    shards_per_client: int | None = Field(
        default=None, ge=1, description="Label-sorted shards each client receives (2 = about two classes)."
    )

    @model_validator(mode="after")
    def _rules(self) -> Partition:
        if self.scheme == "dirichlet" and self.alpha is None:
            raise rule_error("alpha", "required (> 0) when scheme is 'dirichlet'")
        if self.scheme == "shards" and self.shards_per_client is None:
            raise rule_error("shards_per_client", "required (>= 1) when scheme is 'shards'")
        return self


class Compression(_Part):
    method: Annotated[Literal["none", "topk", "int8", "qsgd"], SEARCHED] = Field(
        default="none",
        description="What clients do to their update before upload: topk sparsification, int8 "
        "linear quantization, qsgd stochastic quantization.",
    )
    ratio: Annotated[float | None, SEARCHED] = Field(
        default=None,
        gt=0,
        le=1,
        description=f"topk: the fraction of largest-magnitude entries kept (default {DEFAULT_TOPK_RATIO}).",
    )
    bits: Annotated[int | None, SEARCHED] = Field(
        default=None,
        ge=1,
        le=16,
        description=f"qsgd: bits per entry (default {DEFAULT_QSGD_BITS}); int8 uses 8.",
    )
    error_feedback: Annotated[bool, SEARCHED] = Field(
        default=True, description="Carry what compression dropped into the next round's update."
    )

    @model_validator(mode="after")
    def _rules(self) -> Compression:
        if self.method == "topk" and self.ratio is None:
            self.ratio = DEFAULT_TOPK_RATIO
        if self.method == "int8":
            if self.bits not in (None, 8):
                raise rule_error("bits", "int8 quantization uses 8 bits; use 'qsgd' for others")
            self.bits = 8
        if self.method == "qsgd" and self.bits is None:
            self.bits = DEFAULT_QSGD_BITS
        return self


class Lora(_Part):
    rank: Annotated[int, SEARCHED] = Field(
        default=8, ge=1, description="LoRA adapter rank of transformer models."
    )
    alpha: int = Field(default=16, ge=1, description="LoRA scaling: adapters are scaled by alpha / rank.")
    heterogeneous_ranks: bool = Field(
        default=False,
        description="Extension: each client's rank follows its system profile "
        "(slower clients train smaller adapters, at most `rank`).",
    )


class Robust(_Part):
    trim_fraction: Annotated[float, SEARCHED] = Field(
        default=0.2,
        ge=0,
        lt=0.5,
        description="trimmed_mean drops this fraction at each end of every coordinate; krum assumes "
        "floor(trim_fraction x sampled clients) Byzantine clients.",
    )


class DP(_Part):
    noise_multiplier: float | None = Field(
        default=None,
        ge=0,
        description="Client-level DP: Gaussian noise of std noise_multiplier x clip_norm is added to the "
        "sum of clipped updates. Null (with clip_norm) = no DP.",
    )
    clip_norm: float | None = Field(
        default=None, ge=0, description="Each client update is clipped to this L2 norm."
    )
    delta: float = Field(default=1e-5, ge=0, description="The delta at which epsilon is reported.")

    @model_validator(mode="after")
    def _rules(self) -> DP:
        if self.noise_multiplier is not None and self.clip_norm is None:
            raise rule_error("clip_norm", "required when dp.noise_multiplier is set")
        if self.clip_norm is not None and self.noise_multiplier is None:
            self.noise_multiplier = 0.0
        return self

    @property
    def enabled(self) -> bool:
        return self.clip_norm is not None


class HPO(_Part):
    enabled: bool = Field(
        default=False,
        description="Run a hyper-parameter / architecture search around this spec instead of one job.",
    )
    trials: int = Field(default=0, ge=0, description="Federated trials the search runs (>= 1 when enabled).")
    objective: Literal["accuracy", "loss"] = Field(
        default="accuracy", description="What trials are compared on, measured on the validation split."
    )
    fixed: list[str] = Field(
        default_factory=list,
        description="Dotted field names the search must not change (a group pins its fields).",
    )

    @model_validator(mode="after")
    def _rules(self) -> HPO:
        if self.enabled and self.trials < 1:
            raise rule_error("trials", "must be >= 1 when hpo.enabled is true")
        unknown = [name for name in self.fixed if name not in spec_field_names()]
        if unknown:
            raise rule_error("fixed", f"unknown field name(s): {', '.join(unknown)}")
        return self


class Scheduling(_Part):
    """Extension: the knobs of the selection policies."""

    deadline_s: float | None = Field(
        default=None,
        gt=0,
        description="Per-round deadline in simulated seconds for 'deadline' selection, and the "
        "preferred round duration of 'oort'; null = the median client's expected round time.",
    )
    poc_candidates: int | None = Field(
        default=None,
        ge=1,
        description="Candidate set size d for 'power_of_choice'; null = 2 x clients_per_round.",
    )
    oort_exploration: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Probability that an 'oort' pick explores a client that has not trained yet.",
    )
    availability: bool = Field(
        default=False,
        description="Simulate client availability: each round a client is online with its system "
        "profile's probability (0.5 to 1, drawn from the seed) and is only selectable then.",
    )


class ServerOptimizer(_Part):
    """Extension: the adaptive server optimizers' constants (Reddi et al. 2021)."""

    beta1: float = Field(default=0.9, ge=0, lt=1, description="Decay of the server's first moment.")
    beta2: float = Field(
        default=0.99, ge=0, lt=1, description="Decay of the second moment (fedadam, fedyogi)."
    )
    tau: float = Field(default=1e-3, gt=0, description="Adaptivity: added to the root of the second moment.")


class Attack(_Part):
    """Extension, for evaluating robustness: a seeded fraction of malicious clients."""

    kind: AttackKind = Field(
        description="sign_flip uploads -scale x the honest update; gaussian uploads N(0, scale^2) noise "
        "instead; scale uploads scale x the honest update; label_flip trains on permuted labels."
    )
    fraction: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description="Share of the clients that are malicious (round half up, at least one; the same "
        "clients all job, chosen by the seed).",
    )
    scale: float | None = Field(
        default=None,
        gt=0,
        description="null = 4 for sign_flip, 1 for gaussian, 10 for scale; unused by label_flip.",
    )

    @model_validator(mode="after")
    def _rules(self) -> Attack:
        if self.scale is None:
            self.scale = DEFAULT_ATTACK_SCALE[self.kind]
        return self


class Architecture(_Part):
    """Extension (NAS): layer sizes of the built-in `mlp` and `cnn` models."""

    hidden: list[int] | None = Field(
        default=None, min_length=1, max_length=4, description="mlp: hidden layer widths; null = [128]."
    )
    channels: list[int] | None = Field(
        default=None,
        min_length=1,
        max_length=4,
        description="cnn: channels of each conv layer; null = [32, 64].",
    )
    kernel: Literal[3, 5] | None = Field(default=None, description="cnn: convolution kernel size; null = 3.")

    @model_validator(mode="after")
    def _rules(self) -> Architecture:
        for name in ("hidden", "channels"):
            sizes = getattr(self, name)
            if sizes and not all(4 <= size <= 1024 for size in sizes):
                raise rule_error(name, "layer sizes must lie in 4 ... 1024")
        return self


class JobSpec(_Strict):
    """A federated job. See docs/jobspec.md for the generated field reference."""

    model_config = ConfigDict(title="JobSpec")

    spec_version: Literal[1] = SPEC_VERSION
    name: Annotated[str | None, Meta(group="Job")] = Field(
        default=None, max_length=200, description="A label for the job; shown in lists."
    )
    dataset: Annotated[Dataset, Meta(group="Data", pinnable=True)] = Field(
        default="digits", description="The learning task's data; csv reads dataset_path."
    )
    dataset_path: Annotated[str | None, Meta(group="Data")] = Field(
        default=None, description="csv: the CSV file (a header row and a 'label' column), in your data space."
    )
    model: Annotated[str | None, Meta(group="Model", pinnable=True)] = Field(
        default=None,
        description="mlp, cnn, resnet18, minilm or hf:<id-or-local-path>; null = the dataset's default.",
    )
    algorithm: Annotated[Algorithm, Meta(group="Algorithm", searched=True)] = Field(
        default="fedavg", description="The server's aggregation strategy."
    )
    num_clients: Annotated[int, Meta(group="Clients", pinnable=True)] = Field(
        default=10, ge=1, description="Clients that hold a data partition."
    )
    clients_per_round: Annotated[int | None, Meta(group="Clients", searched=True)] = Field(
        default=None, ge=1, description="Clients selected each round; null = all of them."
    )
    rounds: Annotated[int, Meta(group="Training", searched=True)] = Field(
        default=20, ge=1, description="Communication rounds."
    )
    local_epochs: Annotated[int, Meta(group="Training", searched=True)] = Field(
        default=1, ge=1, description="Passes over its local data each client makes per round."
    )
    batch_size: Annotated[int, Meta(group="Training", searched=True)] = Field(
        default=32, ge=1, description="Local mini-batch size."
    )
    learning_rate: Annotated[float | None, Meta(group="Training", searched=True)] = Field(
        default=None,
        gt=0,
        description="Client step size; null = 0.01 for mlp and cnn, 0.001 for resnet18 and LoRA adapters.",
    )
    optimizer: Annotated[Optimizer, Meta(group="Training", searched=True)] = Field(
        default="adam", description="Client optimizer, a fresh state each round."
    )
    partition: Annotated[Partition, Meta(group="Data")] = Field(default_factory=Partition)
    compression: Annotated[Compression, Meta(group="Compression")] = Field(default_factory=Compression)
    selection: Annotated[Selection, Meta(group="Scheduling", pinnable=True)] = Field(
        default="random", description="How the server picks each round's clients."
    )
    lora: Annotated[Lora, Meta(group="LoRA")] = Field(default_factory=Lora)
    proximal_mu: Annotated[float | None, Meta(group="Algorithm", searched=True)] = Field(
        default=None, ge=0, description="FedProx proximal weight; null = 0.01 with fedprox."
    )
    server_learning_rate: Annotated[float | None, Meta(group="Algorithm", searched=True)] = Field(
        default=None,
        gt=0,
        description="Server step size; null = 1.0 (fedavg, fedprox, fedavgm, scaffold) or 0.01 (fedadam, "
        "fedyogi, fedadagrad).",
    )
    server_momentum: Annotated[float | None, Meta(group="Algorithm", searched=True)] = Field(
        default=None, ge=0, lt=1, description="Server momentum; null = 0.9 with fedavgm."
    )
    robust: Annotated[Robust, Meta(group="Robustness and attacks")] = Field(default_factory=Robust)
    dp: Annotated[DP, Meta(group="Privacy")] = Field(default_factory=DP)
    seed: Annotated[int, Meta(group="Job", pinnable=True)] = Field(
        default=0,
        ge=0,
        le=MAX_SEED,
        description="Makes partitioning, sampling and initialisation reproducible (0 ... 2**32 - 1).",
    )
    hpo: Annotated[HPO, Meta(group="Hyper-parameter search")] = Field(default_factory=HPO)
    # Extensions beyond the contract's brief, each with a documented default.
    scheduling: Annotated[Scheduling, Meta(group="Scheduling")] = Field(default_factory=Scheduling)
    server_optimizer: Annotated[ServerOptimizer, Meta(group="Algorithm")] = Field(
        default_factory=ServerOptimizer
    )
    attack: Annotated[Attack | None, Meta(group="Robustness and attacks")] = None
    architecture: Annotated[Architecture | None, Meta(group="Architecture (NAS)", searched=True)] = None
    validation_fraction: Annotated[float, Meta(group="Data")] = Field(
        default=0.0,
        ge=0,
        lt=0.5,
        description="Extension: the stratified fraction of the training data (chosen by seed) held out "
        "before partitioning; rounds then also report val_accuracy and val_loss on it. HPO trials "
        "compare on it, never on the test set. 0 = no validation split.",
    )

    @model_validator(mode="before")
    @classmethod
    def _implied_algorithm(cls, data: Any) -> Any:
        """server_momentum on fedavg means fedavgm; proximal_mu on fedavg means fedprox."""
        if not isinstance(data, dict) or data.get("algorithm", "fedavg") != "fedavg":
            return data
        if data.get("server_momentum") is not None:
            return {**data, "algorithm": "fedavgm"}
        if data.get("proximal_mu") is not None:
            return {**data, "algorithm": "fedprox"}
        return data

    @model_validator(mode="after")
    def _resolve(self) -> JobSpec:
        self._resolve_model()
        if self.clients_per_round is None:
            self.clients_per_round = self.num_clients
        elif self.clients_per_round > self.num_clients:
            raise rule_error("clients_per_round", "must be <= num_clients")
        if self.learning_rate is None:
            self.learning_rate = default_learning_rate(self.model or "")
        if self.algorithm == "fedprox" and self.proximal_mu is None:
            self.proximal_mu = 0.01
        if self.server_learning_rate is None:
            self.server_learning_rate = 0.01 if self.algorithm in ADAPTIVE_ALGORITHMS else 1.0
        if self.algorithm == "fedavgm" and self.server_momentum is None:
            self.server_momentum = 0.9
        if self.algorithm == "flora" and not self.uses_lora:
            raise rule_error(
                "algorithm", "'flora' aggregates LoRA adapters: needs model 'minilm' or 'hf:...'"
            )
        if self.lora.heterogeneous_ranks and self.algorithm != "flora":
            # Only stacking combines adapters of different ranks exactly.
            raise rule_error("lora.heterogeneous_ranks", "needs algorithm 'flora'")
        if self.dp.enabled and self.algorithm not in DP_ALGORITHMS:
            raise rule_error(
                "dp",
                f"client-level DP noises the mean of clipped updates, which '{self.algorithm}' does not "
                f"aggregate: use {', '.join(DP_ALGORITHMS)}",
            )
        if self.architecture is not None:
            self._check_architecture(self.architecture)
        if self.partition.scheme == "shards":
            self._check_shards()
        return self

    def _resolve_model(self) -> None:
        if self.dataset == "csv" and not self.dataset_path:
            raise rule_error("dataset_path", "required when dataset is 'csv'")
        allowed = compatible_models(self.dataset)
        if self.model is None:
            self.model = allowed[0]
            return
        if self.model.startswith("hf:"):
            if len(self.model) == 3:
                raise rule_error("model", "'hf:' needs a model id or local path after the colon")
            if "hf:" in allowed:
                return
        elif self.model not in BUILTIN_MODELS:
            raise rule_error(
                "model", f"unknown model '{self.model}': use {', '.join(BUILTIN_MODELS)} or hf:<id>"
            )
        elif self.model in allowed:
            return
        raise rule_error(
            "model",
            f"model '{self.model}' does not fit dataset '{self.dataset}' "
            f"(dataset '{self.dataset}' takes {', '.join(allowed)})",
        )

    def _check_architecture(self, arch: Architecture) -> None:
        if arch.hidden is not None and self.model != "mlp":
            raise rule_error("architecture.hidden", "applies to model 'mlp' only")
        if (arch.channels is not None or arch.kernel is not None) and self.model != "cnn":
            raise rule_error("architecture.channels", "channels and kernel apply to model 'cnn' only")

    def _check_shards(self) -> None:
        assert self.partition.shards_per_client is not None
        if self.partition.shards_per_client * self.num_clients > 100_000:
            raise rule_error(
                "partition.shards_per_client", "shards_per_client x num_clients must be <= 100000"
            )

    @property
    def uses_lora(self) -> bool:
        return self.model == "minilm" or (self.model or "").startswith("hf:")

    def sampled_clients(self) -> int:
        assert self.clients_per_round is not None
        return self.clients_per_round


def default_learning_rate(model: str) -> float:
    if model == "resnet18":
        return 0.001
    if model == "minilm" or model.startswith("hf:"):
        return 0.001
    return 0.01


def compatible_models(dataset: str) -> list[str]:
    """The models a dataset takes, its default first ('hf:' stands for any hf:<id>).

    A CSV takes any model here: which one fits depends on the file's columns, which the
    server checks when it admits the job (the spec's validity never depends on a machine).
    """
    return list(CATALOGUE[dataset].models)


def model_fits(model: str, allowed: list[str] | tuple[str, ...]) -> bool:
    return model in allowed or (model.startswith("hf:") and "hf:" in allowed)


def spec_field_names() -> set[str]:
    """Every dotted field name of the spec ("rounds", "partition.alpha", ...)."""
    names: set[str] = set()
    for name, info in JobSpec.model_fields.items():
        names.add(name)
        annotation = info.annotation
        candidates = getattr(annotation, "__args__", (annotation,))
        for candidate in candidates:
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                names.update(f"{name}.{sub}" for sub in candidate.model_fields)
    return names


def spec_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Field-named errors: [{"field": "partition.alpha", "message": "..."}]."""
    errors = []
    for error in exc.errors():
        path = [str(part) for part in error["loc"]]
        field = (error.get("ctx") or {}).get("field")
        if field:
            path.append(str(field))
        errors.append({"field": ".".join(path) or "spec", "message": error["msg"]})
    return errors


def format_spec_errors(errors: list[dict[str, str]]) -> str:
    return "; ".join(f"{error['field']}: {error['message']}" for error in errors)


def spec_diff(base: JobSpec, other: JobSpec) -> dict[str, tuple[Any, Any]]:
    """Dotted field -> (base value, other value) for every field that differs."""
    left = flatten(base.model_dump(mode="json"))
    right = flatten(other.model_dump(mode="json"))
    return {
        key: (left.get(key), right.get(key))
        for key in sorted(set(left) | set(right))
        if left.get(key) != right.get(key)
    }


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
