"""The new-job form is generated from JobSpec: every field, its default, and a faithful
round trip from spec to form inputs and back."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import QueryDict
from pydantic import ValidationError

from jobspec import JobSpec, spec_errors, spec_field_names
from orchestrator.hpo.space import SEARCHED_FIELDS
from orchestrator.presets import PRESETS
from webui.forms import SpecForm, spec_form, spec_from_form


def submitted_values(form: SpecForm) -> QueryDict:
    """What a browser would post for the form as rendered."""
    data = QueryDict(mutable=True)
    for field in form.fields:
        if field.kind == "checkbox":
            if field.checked:
                data[field.name] = "on"
        elif field.kind == "pins":
            data.setlist(field.name, field.selected)
        else:
            data[field.name] = field.value
    return data


def leaf_names() -> set[str]:
    names = spec_field_names() - {"spec_version"}
    parents = {name.split(".")[0] for name in names if "." in name}
    return names - parents


def test_every_spec_field_is_an_input_and_none_is_invented() -> None:
    form = spec_form()
    assert {field.name for field in form.fields} == leaf_names()


def test_fields_are_grouped_and_the_contract_groups_come_first() -> None:
    titles = [group.title for group in spec_form().groups]
    assert titles[:8] == [
        "Job",
        "Data",
        "Model",
        "Algorithm",
        "Clients",
        "Training",
        "Compression",
        "Scheduling",
    ]
    assert "Privacy" in titles


def test_the_empty_form_shows_the_contracts_defaults() -> None:
    fields = {field.name: field for field in spec_form().fields}
    assert fields["dataset"].value == "digits"
    assert fields["num_clients"].value == "10"
    assert fields["rounds"].value == "20"
    assert fields["optimizer"].value == "adam"
    assert fields["learning_rate"].value == "" and fields["learning_rate"].placeholder == "default"
    assert fields["compression.error_feedback"].checked
    assert fields["dataset"].kind == "select" and "fashion_mnist" in fields["dataset"].choices
    assert fields["attack.kind"].blank_label == "off" and fields["attack.kind"].value == ""


def test_the_default_form_submits_the_default_spec() -> None:
    spec = JobSpec.model_validate(spec_from_form(submitted_values(spec_form())))
    assert spec == JobSpec()


ROUND_TRIP_SPECS: list[dict[str, Any]] = [
    *[preset.spec for preset in PRESETS],
    {
        "name": "everything",
        "dataset": "digits",
        "model": "cnn",
        "algorithm": "fedavgm",
        "server_momentum": 0.5,
        "num_clients": 12,
        "clients_per_round": 5,
        "partition": {"scheme": "shards", "shards_per_client": 2},
        "compression": {"method": "topk", "ratio": 0.25, "error_feedback": False},
        "selection": "round_robin",
        "dp": {"noise_multiplier": 0.8, "clip_norm": 1.5, "delta": 1e-6},
        "attack": {"kind": "sign_flip", "fraction": 0.3},
        "architecture": {"channels": [8, 16], "kernel": 5},
        "hpo": {"enabled": True, "trials": 4, "objective": "loss", "fixed": ["rounds", "seed"]},
        "seed": 7,
    },
]


@pytest.mark.parametrize("raw", ROUND_TRIP_SPECS)
def test_a_spec_survives_the_round_trip_through_the_form(raw: dict[str, Any]) -> None:
    for preset in PRESETS:
        if preset.spec is raw and preset.prepare is not None:
            preset.prepare()  # a demo data set the spec's validation reads
    spec = JobSpec.model_validate(raw)
    again = JobSpec.model_validate(spec_from_form(submitted_values(spec_form(spec))))
    assert again == spec


def test_errors_highlights_and_warnings_land_on_their_fields() -> None:
    form = spec_form(
        {"partition": {"scheme": "dirichlet", "alpha": 0.5}},
        errors=[
            {"field": "partition.alpha", "message": "must be > 0"},
            {"field": "architecture.hidden.0", "message": "too small"},
            {"field": "spec", "message": "you already have 4 jobs"},
        ],
        highlighted={"partition", "rounds"},
        warnings={"partition.alpha": "'non-IID' read as alpha 0.5"},
    )
    fields = {field.name: field for field in form.fields}
    assert fields["partition.alpha"].error == "must be > 0"
    assert fields["architecture.hidden"].error == "too small"
    assert form.non_field_errors == ["you already have 4 jobs"]
    assert fields["partition.scheme"].highlighted and fields["partition.alpha"].highlighted
    assert fields["rounds"].highlighted and not fields["seed"].highlighted
    assert fields["partition.alpha"].warning == "'non-IID' read as alpha 0.5"


def test_typos_come_back_as_pydantic_errors_for_the_field() -> None:
    data = submitted_values(spec_form())
    data["num_clients"] = "ten"
    with pytest.raises(ValidationError) as caught:
        JobSpec.model_validate(spec_from_form(data))
    assert [error["field"] for error in spec_errors(caught.value)] == ["num_clients"]


def test_hpo_fixed_offers_a_pin_for_every_searched_field_and_keeps_listed_ones() -> None:
    pins = {f.name: f for f in spec_form({"hpo": {"fixed": ["seed", "rounds"]}}).fields}["hpo.fixed"]
    assert pins.kind == "pins"
    assert set(SEARCHED_FIELDS) <= set(pins.choices)
    assert pins.selected == ["seed", "rounds"] and "seed" in pins.choices  # listed, though never searched


def test_fields_the_user_set_start_pinned() -> None:
    form = spec_form(
        {"learning_rate": 0.01, "architecture": {"hidden": [64]}, "compression": {"method": "int8"}},
        explicit=["learning_rate", "architecture.hidden", "compression", "dataset"],
    )
    pins = {f.name: f for f in form.fields}["hpo.fixed"]
    assert set(pins.selected) == {
        "learning_rate",
        "architecture",
        "compression.method",
        "compression.ratio",
        "compression.bits",
        "compression.error_feedback",
    }
    assert "dataset" not in pins.selected  # a search never changes it: nothing to pin


def test_released_pins_are_left_out_of_the_submitted_spec() -> None:
    data = submitted_values(spec_form({"learning_rate": 0.01}, explicit=["learning_rate", "rounds"]))
    assert data.getlist("hpo.fixed") == ["rounds", "learning_rate"]  # in spec order
    data.setlist("hpo.fixed", ["rounds"])  # the user unticks learning_rate
    assert JobSpec.model_validate(spec_from_form(data)).hpo.fixed == ["rounds"]
