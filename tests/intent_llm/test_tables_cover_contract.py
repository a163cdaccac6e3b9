"""The generator's hand-written tables cover the contract: every value the spec allows for
every enum head (intent_llm.fields.ENUM_HEADS, minus AWAITING_RETRAIN) has phrasings and a
prior, every number field has phrasings, a prior and a renderer, and the models the generator
pairs with each data set are jobspec.catalogue's. A new spec value fails here, naming the table
to extend, before a retrain would silently never see it."""

from __future__ import annotations

import random

import pytest

from intent_llm.fields import AWAITING_RETRAIN, ENUM_HEADS, FIXABLE_FIELDS, NUMBER_FIELDS, UNSET
from intent_llm.training import phrasings
from intent_llm.training.generator_assignment import (
    _ANY_MODEL,
    _CHOICES,
    _MODELS_FOR_DATASET,
    _VALUES,
    _WEIGHTED_VALUES,
    sample_assignment,
)
from intent_llm.training.generator_numbers import FIELD_KIND, RENDERERS
from jobspec import DATASETS, compatible_models

ASSIGNMENT = "intent_llm/training/generator_assignment.py"
PHRASINGS = "intent_llm/training/phrasings.py"
NUMBERS = "intent_llm/training/generator_numbers.py"

# Heads whose values are drawn in code rather than from a table (see _CHOICES' comment).
DRAWN_IN_CODE = {"hpo.enabled": ("true", "false"), "dp": ("on", "off")}
# Number fields drawn in code: clients_per_round is a count below num_clients or a share of
# them from _VALUES["client_fraction"] (_choose_clients).
NUMBERS_DRAWN_IN_CODE = {"clients_per_round": "client_fraction"}


def contract_values(head: str) -> list[str]:
    awaiting = set(AWAITING_RETRAIN.get(head, ()))
    return [value for value in ENUM_HEADS[head] if value != UNSET and value not in awaiting]


def prior_values(head: str) -> set[str]:
    if head in _WEIGHTED_VALUES:
        return {value for _, value in _WEIGHTED_VALUES[head]}
    if head == "model":
        return {*_ANY_MODEL, *(model for models in _MODELS_FOR_DATASET.values() for model in models)}
    if head in _CHOICES:
        return set(_CHOICES[head])
    return set(DRAWN_IN_CODE.get(head, ()))


def sampled(family: str, count: int = 3000) -> list[dict]:
    rng = random.Random(20240601)
    return [sample_assignment(rng, 3.0, eval_family=family == "heldout") for _ in range(count)]


@pytest.mark.parametrize("head", sorted(ENUM_HEADS))
def test_every_enum_value_has_phrasings(head):
    surfaces = phrasings.ENUM_SURFACES.get(head, {})
    for value in contract_values(head):
        for part in ("train", "heldout"):
            assert surfaces.get(value, {}).get(part), (
                f"ENUM_SURFACES['{head}']['{value}']['{part}'] in {PHRASINGS} is missing or empty: "
                f"add how users write {value!r} (or list it in AWAITING_RETRAIN in intent_llm/fields.py)"
            )


@pytest.mark.parametrize("head", sorted(ENUM_HEADS))
def test_every_enum_value_has_a_prior(head):
    missing = [value for value in contract_values(head) if value not in prior_values(head)]
    table = (
        "_WEIGHTED_VALUES"
        if head in _WEIGHTED_VALUES
        else "_MODELS_FOR_DATASET / _ANY_MODEL"
        if head == "model"
        else "_CHOICES"
    )
    assert not missing, (
        f"{table}['{head}'] in {ASSIGNMENT} never draws {missing}: add them (or list them in "
        "AWAITING_RETRAIN in intent_llm/fields.py)"
    )


@pytest.mark.parametrize("family", ["train", "heldout"])
def test_the_generator_draws_every_enum_value_and_number_field(family):
    """The tables are used: every allowed value and every number field shows up in assignments."""
    assignments = sampled(family)
    for head in ENUM_HEADS:
        drawn = {assignment[head] for assignment in assignments if head in assignment}
        missing = sorted(set(contract_values(head)) - drawn)
        assert not missing, f"sample_assignment ({ASSIGNMENT}) never draws {head}={missing} for {family}"
    unseen = sorted(set(NUMBER_FIELDS) - {key for assignment in assignments for key in assignment})
    assert not unseen, (
        f"sample_assignment ({ASSIGNMENT}) never sets {unseen} for {family}: give them a _choose_* draw"
    )


@pytest.mark.parametrize("field", NUMBER_FIELDS)
def test_every_number_field_has_a_generator(field):
    assert FIELD_KIND.get(field) in RENDERERS, (
        f"FIELD_KIND['{field}'] in {NUMBERS} is missing: say how its numbers are written "
        f"({', '.join(RENDERERS)})"
    )
    prior = NUMBERS_DRAWN_IN_CODE.get(field, field)
    assert _VALUES.get(prior), f"_VALUES['{prior}'] in {ASSIGNMENT} is missing or empty: add typical values"
    for part in ("train", "heldout"):
        assert phrasings.NUMBER_PHRASES.get(field, {}).get(part), (
            f"NUMBER_PHRASES['{field}']['{part}'] in {PHRASINGS} is missing or empty: add how users state it"
        )


@pytest.mark.parametrize("dataset", DATASETS)
def test_the_models_paired_with_a_dataset_are_the_catalogues(dataset):
    catalogue = {model.rstrip(":") for model in compatible_models(dataset)}
    assert set(_MODELS_FOR_DATASET.get(dataset, ())) == catalogue, (
        f"_MODELS_FOR_DATASET['{dataset}'] in {ASSIGNMENT} differs from jobspec.catalogue's "
        f"compatible models {sorted(catalogue)}: update the table (the generator's output digests in "
        "test_generator_output.py change with it)"
    )
    assert set(_MODELS_FOR_DATASET) - set(DATASETS) <= {"other"}, (
        f"_MODELS_FOR_DATASET in {ASSIGNMENT} names data sets the catalogue does not have"
    )


def test_the_field_names_table_names_every_pinnable_field():
    """A prompt pins a field by naming it (FIXED_PHRASES + FIELD_NAMES): every field the spec lets
    `hpo.fixed` pin has surfaces, unless it awaits a retrain; and nothing else is named."""
    awaiting = set(AWAITING_RETRAIN.get("fixed", ()))
    unnamed = [
        field for field in FIXABLE_FIELDS if field not in awaiting and not phrasings.FIELD_NAMES.get(field)
    ]
    assert not unnamed, (
        f"FIELD_NAMES in {PHRASINGS} does not name {unnamed}, which `hpo.fixed` can pin "
        "(jobspec.fields.pinnable_fields): add how users name them, or list them in "
        "AWAITING_RETRAIN['fixed'] in intent_llm/fields.py"
    )
    extra = sorted(set(phrasings.FIELD_NAMES) - set(FIXABLE_FIELDS))
    assert not extra, f"FIELD_NAMES in {PHRASINGS} names {extra}, which the spec does not let a prompt pin"
    named_though_awaiting = sorted(awaiting & set(phrasings.FIELD_NAMES))
    assert not named_though_awaiting, (
        f"FIELD_NAMES names {named_though_awaiting}: a retrain would teach them; retrain and "
        "remove them from AWAITING_RETRAIN['fixed']"
    )
