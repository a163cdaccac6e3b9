"""JobSpec refuses what no job can run or no row can hold: non-finite floats in every float
field, NUL characters in every string field, seeds outside 0 ... 2**32 - 1."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from jobspec import JobSpec, spec_errors
from jobspec.model import MAX_SEED


def fields_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        JobSpec.model_validate(data)
    return [error["field"] for error in spec_errors(info.value)]


def _leaf_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any]]:
    leaves = []
    for name, info in model.model_fields.items():
        args = typing.get_args(info.annotation) or (info.annotation,)
        nested = [arg for arg in args if isinstance(arg, type) and issubclass(arg, BaseModel)]
        if nested:
            leaves += _leaf_fields(nested[0], f"{prefix}{name}.")
        else:
            leaves.append((f"{prefix}{name}", info.annotation))
    return leaves


def _annotation_has(annotation: Any, kind: type) -> bool:
    return annotation is kind or kind in typing.get_args(annotation)


FLOAT_FIELDS = [name for name, annotation in _leaf_fields(JobSpec) if _annotation_has(annotation, float)]
STRING_FIELDS = [name for name, annotation in _leaf_fields(JobSpec) if _annotation_has(annotation, str)]
# Values a nested field needs beside it to be considered at all.
CONTEXT: dict[str, dict[str, Any]] = {"attack": {"kind": "scale"}}


def spec_with(field: str, value: Any) -> dict[str, Any]:
    *parents, leaf = field.split(".")
    data: dict[str, Any] = {}
    node = data
    for parent in parents:
        node = node.setdefault(parent, dict(CONTEXT.get(parent, {})))
    node[leaf] = value
    return data


def test_the_derived_field_lists_cover_the_spec() -> None:
    assert {"learning_rate", "server_learning_rate", "dp.clip_norm", "partition.alpha"} <= set(FLOAT_FIELDS)
    assert {"name", "dataset_path", "model"} <= set(STRING_FIELDS)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), "inf", "Infinity", "nan"])
@pytest.mark.parametrize("field", FLOAT_FIELDS)
def test_every_float_field_refuses_non_finite_values(field: str, value: Any) -> None:
    assert field in fields_of(spec_with(field, value))


@pytest.mark.parametrize("field", STRING_FIELDS)
def test_every_string_field_refuses_a_nul_character(field: str) -> None:
    assert fields_of(spec_with(field, "a\x00b")) == [field]


def test_a_list_of_strings_refuses_a_nul_character() -> None:
    assert fields_of({"hpo": {"fixed": ["rounds", "seed\x00"]}}) == ["hpo.fixed"]


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 2**64, 10**30])
def test_seed_outside_numpys_range_is_refused(seed: int) -> None:
    assert fields_of({"seed": seed}) == ["seed"]


@pytest.mark.parametrize("seed", [0, 12345, MAX_SEED])
def test_seed_bounds_are_inclusive(seed: int) -> None:
    assert JobSpec.model_validate({"seed": seed}).seed == seed


def test_finite_values_and_plain_strings_still_validate() -> None:
    spec = JobSpec.model_validate({"name": "ok", "learning_rate": 1e-300, "server_learning_rate": "0.5"})
    assert spec.learning_rate == 1e-300 and spec.server_learning_rate == 0.5
    assert JobSpec.model_validate(spec.model_dump(mode="json")) == spec
