"""The JobSpec's fields as flat leaves, read from its JSON schema (pure: no Django).

The web form (`webui/forms.py`) and the generated reference (`docs/jobspec.md`,
`python -m jobspec.reference`) both walk the spec through this, so a
field added to `JobSpec` appears in both with its type, default and bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel

from .fields import block_model
from .model import JobSpec


@dataclass(frozen=True)
class SpecLeaf:
    """One settable value of the spec: a top-level scalar or a field of a nested block."""

    name: str  # dotted: "partition.alpha"
    type: str  # integer | number | boolean | string | array | enum
    default: Any
    nullable: bool
    description: str = ""
    choices: tuple[Any, ...] = ()
    item_type: str = ""  # for arrays
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    exclusive_maximum: float | None = None
    min_items: int | None = None
    max_items: int | None = None
    required_in_parent: bool = False  # "attack.kind": the block needs it
    optional_parent: str = ""  # "attack" when the enclosing block may be null (off)

    @property
    def top(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def bounds(self) -> str:
        """The numeric bounds in words: "> 0, ≤ 1"."""
        parts = [
            f"{symbol} {value}"
            for symbol, value in (
                ("≥", self.minimum),
                (">", self.exclusive_minimum),
                ("≤", self.maximum),
                ("<", self.exclusive_maximum),
            )
            if value is not None
        ]
        if self.min_items is not None or self.max_items is not None:
            parts.append(f"{self.min_items or 0} … {self.max_items or 'any'} items")
        return ", ".join(parts)


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(the concrete schema, whether null is allowed) for a property."""
    nullable = False
    if "anyOf" in schema:
        options = [option for option in schema["anyOf"] if option.get("type") != "null"]
        nullable = len(options) < len(schema["anyOf"])
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        schema = {**options[0], **rest} if len(options) == 1 else rest
    if "$ref" in schema:
        target = defs[schema["$ref"].rsplit("/", 1)[-1]]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema, nullable


def _leaf(name: str, schema: dict[str, Any], nullable: bool, default: Any, **extra: Any) -> SpecLeaf:
    kind = "enum" if "enum" in schema else schema.get("type", "string")
    return SpecLeaf(
        name=name,
        type=kind,
        default=default,
        nullable=nullable,
        description=schema.get("description", ""),
        choices=tuple(schema.get("enum", ())),
        item_type=schema.get("items", {}).get("type", "") if kind == "array" else "",
        minimum=schema.get("minimum"),
        exclusive_minimum=schema.get("exclusiveMinimum"),
        maximum=schema.get("maximum"),
        exclusive_maximum=schema.get("exclusiveMaximum"),
        min_items=schema.get("minItems"),
        max_items=schema.get("maxItems"),
        **extra,
    )


def _declared_default(model: type[BaseModel], name: str) -> Any:
    """A field's declared default (default factories called: `[]` rather than nothing)."""
    info = model.model_fields[name]
    if info.is_required():
        return None
    value = info.get_default(call_default_factory=True)
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


@cache
def spec_leaves(spec_model: type[BaseModel] = JobSpec) -> tuple[SpecLeaf, ...]:
    """Every settable field of the spec in schema order (the constant spec_version left out)."""
    schema = spec_model.model_json_schema()
    defs = schema.get("$defs", {})
    leaves = []
    for name, prop in schema["properties"].items():
        resolved, nullable = _resolve(prop, defs)
        if "const" in resolved:
            continue
        block = block_model(spec_model, name)
        if block is not None and "properties" in resolved:
            required = set(resolved.get("required", []))
            for sub_name, sub_prop in resolved["properties"].items():
                sub_schema, sub_nullable = _resolve(sub_prop, defs)
                leaves.append(
                    _leaf(
                        f"{name}.{sub_name}",
                        sub_schema,
                        sub_nullable,
                        _declared_default(block, sub_name),
                        required_in_parent=sub_name in required,
                        optional_parent=name if nullable else "",
                    )
                )
        else:
            leaves.append(_leaf(name, resolved, nullable, _declared_default(spec_model, name)))
    return tuple(leaves)


def block_descriptions(spec_model: type[BaseModel] = JobSpec) -> dict[str, str]:
    """The docstring-derived description of each nested block ("attack": "Extension, ...")."""
    schema = spec_model.model_json_schema()
    defs = schema.get("$defs", {})
    descriptions = {}
    for name, prop in schema["properties"].items():
        resolved, _ = _resolve(prop, defs)
        if resolved.get("type") == "object" and resolved.get("description"):
            descriptions[name] = resolved["description"]
    return descriptions
