"""The search space derived from a JobSpec: pinned fields never move, everything else may."""

from __future__ import annotations

from typing import Any

import optuna
import pytest

from jobspec import JobSpec, flatten
from orchestrator.hpo.space import SEARCHED_FIELDS, apply_changes, is_pinned, search_space, trial_spec

SAMPLES = 60
NEVER_SEARCHED = ("dataset", "num_clients", "partition.scheme", "partition.alpha", "seed", "selection")


def poor_spec(**overrides: Any) -> JobSpec:
    data: dict[str, Any] = {
        "dataset": "digits",
        "model": "mlp",
        "num_clients": 10,
        "rounds": 5,
        "optimizer": "adam",
        "learning_rate": 0.0005,
        "partition": {"scheme": "dirichlet", "alpha": 0.1},
    }
    data.update(overrides)
    return JobSpec.model_validate(data)


def sampled_specs(base: JobSpec, count: int = SAMPLES) -> list[JobSpec]:
    space = search_space(base)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    specs = []
    for _ in range(count):
        trial = study.ask()
        specs.append(space.spec_for(space.sample(trial)))
        study.tell(trial, 0.0)
    return specs


def values(spec: JobSpec) -> dict[str, Any]:
    return flatten(spec.model_dump(mode="json"))


@pytest.mark.parametrize(
    ("fixed", "extra"),
    [
        (["rounds"], {}),
        (["learning_rate", "optimizer"], {}),
        (["algorithm", "local_epochs", "batch_size"], {}),
        (["architecture"], {"architecture": {"hidden": [64, 32]}}),
        (["architecture.hidden", "clients_per_round"], {}),
        (["compression"], {"compression": {"method": "topk", "ratio": 0.2}}),
        (["compression.method"], {"compression": {"method": "qsgd", "bits": 4}}),
    ],
)
def test_pinned_fields_keep_their_base_values(fixed: list[str], extra: dict[str, Any]) -> None:
    base = poor_spec(hpo={"enabled": True, "trials": 5, "fixed": fixed}, **extra)
    base_values = values(base)
    pinned = [name for name in base_values if is_pinned(name, fixed)]
    assert pinned
    for spec in sampled_specs(base):
        spec_values = values(spec)
        for name in pinned:
            assert spec_values[name] == base_values[name], name
        for name in NEVER_SEARCHED:
            assert spec_values[name] == base_values[name], name


def test_unlisted_fields_are_searched() -> None:
    """The search fixes only what hpo.fixed lists: with nothing listed, rounds and the rest move."""
    base = poor_spec()
    space = search_space(base)
    for name in ("rounds", "learning_rate", "local_epochs", "batch_size", "optimizer", "algorithm"):
        assert name in space.fields
    specs = sampled_specs(base)
    for name in ("rounds", "learning_rate", "local_epochs", "architecture.hidden", "clients_per_round"):
        assert len({str(values(spec).get(name)) for spec in specs}) > 1, name
    assert "rounds" not in search_space(poor_spec(hpo={"fixed": ["rounds"]})).fields


def test_a_fixed_group_pins_each_of_its_fields() -> None:
    base = poor_spec(compression={"method": "topk", "ratio": 0.2}, hpo={"fixed": ["compression"]})
    fields = search_space(base).fields
    assert not [name for name in fields if name.startswith("compression")]
    released = search_space(poor_spec(compression={"method": "topk", "ratio": 0.2})).fields
    assert {"compression.method", "compression.ratio"} <= set(released)


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"algorithm": "trimmed_mean"},
        {"algorithm": "fedavgm", "compression": {"method": "qsgd", "bits": 4}},
        {"compression": {"method": "topk", "ratio": 0.1}},
        {"model": "cnn", "architecture": {"channels": [16, 32], "kernel": 3}},
        {"dataset": "sst2", "model": "minilm", "optimizer": "adamw", "learning_rate": 0.001},
    ],
)
def test_searched_fields_name_every_field_a_search_can_change(extra: dict[str, Any]) -> None:
    """The form offers SEARCHED_FIELDS as the pins of hpo.fixed: none may be missing."""
    for name in search_space(poor_spec(**extra)).fields:
        assert is_pinned(name, SEARCHED_FIELDS), name


def test_uncompressed_jobs_are_not_offered_compression() -> None:
    assert not [name for name in search_space(poor_spec()).fields if name.startswith("compression")]


def test_the_base_spec_is_a_point_of_the_space() -> None:
    for base in (
        poor_spec(),
        poor_spec(architecture={"hidden": [256, 64]}, batch_size=48, local_epochs=7),
        JobSpec.model_validate({"model": "cnn", "algorithm": "fedadam", "compression": {"method": "int8"}}),
    ):
        space = search_space(base)
        params = space.params_for(base)
        assert params is not None
        assert values(space.spec_for(params)) == values(base)


def test_learning_rate_is_sampled_on_a_log_scale_per_optimizer() -> None:
    space = search_space(poor_spec())
    rates = [dim for dim in space.dimensions if dim.field == "learning_rate"]
    assert {dim.param for dim in rates} == {"learning_rate.sgd", "learning_rate.adaptive"}
    assert all(dim.log for dim in rates)
    pinned = search_space(poor_spec(hpo={"fixed": ["optimizer"]}))
    assert [dim.param for dim in pinned.dimensions if dim.field == "learning_rate"] == [
        "learning_rate.adaptive"
    ]


def test_algorithm_knobs_follow_the_algorithm() -> None:
    adam = JobSpec.model_validate({"algorithm": "fedadam"})
    assert adam.server_learning_rate == 0.01
    assert apply_changes(adam, {"algorithm": "fedavg"}).server_learning_rate == 1.0
    prox = apply_changes(poor_spec(), {"algorithm": "fedprox"})
    assert prox.proximal_mu == 0.01
    kept = JobSpec.model_validate(
        {"algorithm": "fedadam", "server_learning_rate": 0.05, "hpo": {"fixed": ["server_learning_rate"]}}
    )
    assert apply_changes(kept, {"algorithm": "fedyogi"}).server_learning_rate == 0.05


def test_nas_sets_layer_sizes_of_mlp_and_cnn() -> None:
    mlp = search_space(poor_spec())
    depth_and_widths = [dim.param for dim in mlp.dimensions if dim.field == "architecture.hidden"]
    assert depth_and_widths[0] == "architecture.hidden.layers"
    cnn = search_space(JobSpec.model_validate({"model": "cnn"}))
    assert {"architecture.channels", "architecture.kernel"} <= set(cnn.fields)
    spec = mlp.spec_for(
        {**(mlp.params_for(poor_spec()) or {}), "architecture.hidden.layers": 2, "architecture.hidden.2": 64}
    )
    assert spec.architecture is not None and spec.architecture.hidden == [128, 64]


def test_trial_spec_holds_out_validation_and_runs_no_search() -> None:
    spec = trial_spec(
        poor_spec(hpo={"enabled": True, "trials": 3, "fixed": ["rounds"]}), validation_fraction=0.1
    )
    assert spec.validation_fraction == 0.1
    assert not spec.hpo.enabled and spec.hpo.trials == 0


def test_algorithms_stay_within_what_the_spec_allows() -> None:
    private = search_space(poor_spec(dp={"noise_multiplier": 0.5, "clip_norm": 1.0}))
    algorithms = next(dim.choices for dim in private.dimensions if dim.param == "algorithm")
    assert algorithms and not {"scaffold", "krum", "median", "trimmed_mean"} & set(algorithms)
    for spec in sampled_specs(poor_spec(dp={"noise_multiplier": 0.5, "clip_norm": 1.0}), 20):
        assert spec.dp.enabled
    attacked = search_space(poor_spec(attack={"kind": "sign_flip"}))
    robust = next(dim.choices for dim in attacked.dimensions if dim.param == "algorithm")
    assert set(robust) <= {"median", "trimmed_mean", "krum", "fedavg"}
