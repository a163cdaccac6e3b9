"""Which models a CSV file takes, read from its header: the check that needs the file.

The spec itself never reads files (its validity must not depend on the machine); the
server's admission and the CLIs call `csv_model_resolve` where the file is, before the
spec is validated.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from jobspec.catalogue import CSV_TABULAR_MODELS, CSV_TEXT_MODELS
from jobspec.model import model_fits


class CsvModelMismatch(ValueError):
    """The chosen model does not fit the CSV's columns (the message names the file's kind)."""


def csv_has_text_column(path: str | Path) -> bool | None:
    """Whether a CSV's header names a `text` column; None when the file cannot be read."""
    try:
        with Path(path).expanduser().open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError):
        return None
    return "text" in [column.strip() for column in header]


def csv_model_resolve(raw: dict[str, Any]) -> dict[str, Any]:
    """`raw` (a spec as JSON) with the model its CSV calls for when none is chosen.

    A file with a `text` column is a text task (minilm, hf:...), any other is tabular (mlp).
    Raises CsvModelMismatch when the chosen model does not fit; a spec that is not a CSV
    job, or whose file cannot be read here, is returned as it is.
    """
    path = raw.get("dataset_path")
    if raw.get("dataset") != "csv" or not path:
        return raw
    has_text = csv_has_text_column(str(path))
    if has_text is None:
        return raw
    allowed = CSV_TEXT_MODELS if has_text else CSV_TABULAR_MODELS
    model = raw.get("model")
    if model is None:
        return {**raw, "model": allowed[0]}
    if not model_fits(str(model), allowed):
        raise CsvModelMismatch(
            f"model '{model}' does not fit dataset 'csv' (a CSV {'with' if has_text else 'without'} "
            f"a 'text' column takes {', '.join(allowed)})"
        )
    return raw
