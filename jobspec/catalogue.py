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
    # Training examples of the data set (the loaders' train split; digits: all 1797 rows, a
    # bound on its split). None: read from the file (csv). Admission's work budget reads it.
    examples: int | None = None


CATALOGUE: dict[str, DatasetInfo] = {
    "digits": DatasetInfo("image", 10, ("cnn", "mlp"), 1_797),
    "mnist": DatasetInfo("image", 10, ("cnn", "mlp"), 60_000),
    "fashion_mnist": DatasetInfo("image", 10, ("cnn", "mlp"), 60_000),
    "cifar10": DatasetInfo("image", 10, ("cnn", "resnet18"), 50_000),
    "cifar100": DatasetInfo("image", 100, ("cnn", "resnet18"), 50_000),
    "sst2": DatasetInfo("text", 2, ("minilm", "hf:"), 67_349),
    "ag_news": DatasetInfo("text", 4, ("minilm", "hf:"), 120_000),
    "csv": DatasetInfo("tabular", None, ("mlp", "minilm", "hf:")),
}
# A CSV with a `text` column is a text task; one without is tabular.
CSV_TEXT_MODELS = ("minilm", "hf:")
CSV_TABULAR_MODELS = ("mlp",)


def datasets_of_kind(kind: DatasetKind) -> tuple[str, ...]:
    return tuple(name for name, info in CATALOGUE.items() if info.kind == kind)
