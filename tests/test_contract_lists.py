"""Every list of spec fields or values is derived from the contract, or a test names the list
that must follow it. The hypothetical value below shows what a contributor adding one meets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, create_model

from jobspec import BUILTIN_MODELS, JobSpec, spec_field_names
from jobspec.catalogue import CATALOGUE
from jobspec.fields import enum_values, form_groups, searched_fields, settable_top_fields
from jobspec.model import FORM_GROUPS
from jobspec.reference import reference
from jobspec.schema import spec_leaves
from orchestrator.hpo import space

DOCS = Path(__file__).resolve().parent.parent / "docs" / "jobspec.md"


def with_another_value(field: str, value: str) -> Any:
    """A field definition like JobSpec's `field`, its Literal extended by `value`."""
    info = JobSpec.model_fields[field]
    extended = Literal[(*enum_values(field), value)]  # type: ignore[valid-type]
    return (Annotated[extended, *info.metadata], Field(default=info.default, description=info.description))


# JobSpec as it would be with one more optimizer and one more algorithm.
SpecWithAnotherOptimizer = create_model(
    "SpecWithAnotherOptimizer",
    __base__=JobSpec,
    optimizer=with_another_value("optimizer", "lion"),
    algorithm=with_another_value("algorithm", "fednova"),
)


def algorithms_hpo_cannot_place(values: tuple[str, ...]) -> list[str]:
    families = {*space.GENERAL_ALGORITHMS, *space.ROBUST_ALGORITHMS, *space.LORA_ALGORITHMS}
    return [value for value in values if value not in families]


def test_every_top_level_field_has_a_form_section() -> None:
    groups = form_groups()
    assert list(groups) == list(FORM_GROUPS)
    assert sorted(name for names in groups.values() for name in names) == sorted(settable_top_fields())


def test_searched_fields_are_spec_fields() -> None:
    assert set(searched_fields()) <= spec_field_names()
    assert searched_fields() == space.SEARCHED_FIELDS


def test_a_new_enum_value_reaches_the_form_schema_and_search_space() -> None:
    leaves = {leaf.name: leaf for leaf in spec_leaves(SpecWithAnotherOptimizer)}
    assert "lion" in leaves["optimizer"].choices  # the form and the API's schema are built from these
    assert "lion" in SpecWithAnotherOptimizer.model_json_schema()["properties"]["optimizer"]["enum"]
    assert "lion" in enum_values("optimizer", SpecWithAnotherOptimizer)  # HPO's OPTIMIZERS is this
    assert enum_values("optimizer") == space.OPTIMIZERS


def test_a_new_enum_value_makes_the_docs_test_fail() -> None:
    """tests/orchestrator: test_the_committed_spec_reference_is_current asks for `make docs`."""
    assert DOCS.read_text(encoding="utf-8") == reference()
    assert '"lion"' in reference(SpecWithAnotherOptimizer) != DOCS.read_text(encoding="utf-8")


def test_every_algorithm_belongs_to_a_search_family() -> None:
    """HPO chooses algorithms by family (orchestrator/hpo/space.py: GENERAL_, ROBUST_, LORA_ALGORITHMS)."""
    assert algorithms_hpo_cannot_place(enum_values("algorithm")) == [], (
        "add the algorithm to a family in orchestrator/hpo/space.py"
    )
    assert algorithms_hpo_cannot_place(enum_values("algorithm", SpecWithAnotherOptimizer)) == ["fednova"]


def test_the_catalogue_describes_every_data_set_of_the_contract() -> None:
    assert list(CATALOGUE) == list(enum_values("dataset")), "update jobspec/catalogue.py CATALOGUE"
    for name, info in CATALOGUE.items():
        assert set(info.models) <= {*BUILTIN_MODELS, "hf:"}, name
