"""The data sets a spec can name: their kind, classes and the models that fit them, once.

`compatible_models` (the spec's model rule), HPO's diagnostics (chance-level loss) and
the docs read this table; the engine's loaders (orchestrator/fl) implement each name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DatasetKind = Literal["image", "text", "tabular"]


@dataclass(frozen=True)
class DatasetInfo:
    kind: DatasetKind
    classes: int | None  # None: read from the file (csv)
    models: tuple[str, ...]  # the models that fit, the default first; "hf:" = any hf:<id>


CATALOGUE: dict[str, DatasetInfo] = {
    "digits": DatasetInfo("image", 10, ("cnn", "mlp")),
    "mnist": DatasetInfo("image", 10, ("cnn", "mlp")),
    "fashion_mnist": DatasetInfo("image", 10, ("cnn", "mlp")),
    "cifar10": DatasetInfo("image", 10, ("cnn", "resnet18")),
    "cifar100": DatasetInfo("image", 100, ("cnn", "resnet18")),
    "sst2": DatasetInfo("text", 2, ("minilm", "hf:")),
    "ag_news": DatasetInfo("text", 4, ("minilm", "hf:")),
    "csv": DatasetInfo("tabular", None, ("mlp", "minilm", "hf:")),
}
# A CSV with a `text` column is a text task; one without is tabular.
CSV_TEXT_MODELS = ("minilm", "hf:")
CSV_TABULAR_MODELS = ("mlp",)


def datasets_of_kind(kind: DatasetKind) -> tuple[str, ...]:
    return tuple(name for name, info in CATALOGUE.items() if info.kind == kind)
