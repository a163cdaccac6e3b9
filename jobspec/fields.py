"""Lists of the spec's fields, derived from the `Meta` each field carries, never re-typed.

The form's sections (`form_groups`), the fields HPO may change and `hpo.fixed` can pin
(`searched_fields`), and the enum values a field takes (`enum_values`) all come from the
model, so a field or value added to it reaches every part that lists fields.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from functools import cache
from typing import Any

from pydantic import BaseModel

from .model import FORM_GROUPS, JobSpec, Meta


def _meta(model: type[BaseModel], name: str) -> Meta:
    found = [item for item in model.model_fields[name].metadata if isinstance(item, Meta)]
    return found[0] if found else Meta()


def block_model(spec_model: type[BaseModel], name: str) -> type[BaseModel] | None:
    """The pydantic class of a nested block ("partition" -> Partition), if the field is one."""
    annotation = spec_model.model_fields[name].annotation
    for candidate in typing.get_args(annotation) or (annotation,):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def settable_top_fields(spec_model: type[BaseModel] = JobSpec) -> tuple[str, ...]:
    """Top-level fields a person sets (the constant `spec_version` left out)."""
    return tuple(name for name in spec_model.model_fields if name != "spec_version")


@cache
def form_groups(spec_model: type[BaseModel] = JobSpec) -> dict[str, tuple[str, ...]]:
    """Form section title -> its top-level fields in spec order, sections in FORM_GROUPS order."""
    groups: dict[str, list[str]] = {title: [] for title in FORM_GROUPS}
    for name in settable_top_fields(spec_model):
        group = _meta(spec_model, name).group
        if group not in groups:
            raise ValueError(f"JobSpec.{name}: Meta(group={group!r}) is not one of FORM_GROUPS")
        groups[group].append(name)
    return {title: tuple(names) for title, names in groups.items()}


@cache
def _fields_where(spec_model: type[BaseModel], wanted: Callable[[Meta], bool]) -> tuple[str, ...]:
    """Dotted settable fields whose metadata `wanted` accepts, in spec order (a block name
    covers its fields)."""
    names: list[str] = []
    for name in settable_top_fields(spec_model):
        if wanted(_meta(spec_model, name)):
            names.append(name)
        block = block_model(spec_model, name)
        if block is not None:
            names.extend(f"{name}.{sub}" for sub in block.model_fields if wanted(_meta(block, sub)))
    return tuple(names)


def searched_fields(spec_model: type[BaseModel] = JobSpec) -> tuple[str, ...]:
    """Dotted fields an HPO search may change, in spec order."""
    return _fields_where(spec_model, lambda meta: meta.searched)


def pinnable_fields(spec_model: type[BaseModel] = JobSpec) -> tuple[str, ...]:
    """Dotted fields a prompt may list in `hpo.fixed`: every searched field, and those marked
    pinnable that users name as held fixed though the search never changes them."""
    return _fields_where(spec_model, lambda meta: meta.searched or meta.pinnable)


def field_annotation(dotted: str, spec_model: type[BaseModel] = JobSpec) -> Any:
    """The type annotation of a dotted field ("partition.scheme")."""
    model: type[BaseModel] = spec_model
    *parents, leaf = dotted.split(".")
    for part in parents:
        block = block_model(model, part)
        if block is None:
            raise KeyError(f"{part} is not a block of the spec")
        model = block
    return model.model_fields[leaf].annotation


def enum_values(dotted: str, spec_model: type[BaseModel] = JobSpec) -> tuple[Any, ...]:
    """The values an enum field takes, in the order its `Literal` lists them (null left out)."""
    annotation = field_annotation(dotted, spec_model)
    options = typing.get_args(annotation) if typing.get_origin(annotation) is not typing.Literal else ()
    values: list[Any] = []
    for option in options or (annotation,):
        if typing.get_origin(option) is typing.Literal:
            values.extend(typing.get_args(option))
    return tuple(values)
