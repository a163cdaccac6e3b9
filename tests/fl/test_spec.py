"""JobSpec: every rule of ../shared/design/jobspec.md, good and bad input."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from jobspec import JobSpec, compatible_models, spec_diff, spec_errors, spec_field_names
from orchestrator.fl.csv_models import CsvModelMismatch, csv_model_resolve


def make(**data: object) -> JobSpec:
    return JobSpec.model_validate(data)


def errors_of(data: dict) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        JobSpec.model_validate(data)
    return {e["field"]: e["message"] for e in spec_errors(info.value)}


def test_defaults_are_the_contracts_and_resolved() -> None:
    spec = make()
    dumped = spec.model_dump(mode="json")
    assert dumped["spec_version"] == 1
    assert dumped["dataset"] == "digits"
    assert dumped["model"] == "cnn"
    assert dumped["algorithm"] == "fedavg"
    assert dumped["num_clients"] == 10 and dumped["clients_per_round"] == 10
    assert dumped["rounds"] == 20 and dumped["local_epochs"] == 1 and dumped["batch_size"] == 32
    assert dumped["learning_rate"] == 0.01 and dumped["optimizer"] == "adam"
    assert dumped["partition"] == {"scheme": "iid", "alpha": None, "shards_per_client": None}
    assert dumped["compression"] == {"method": "none", "ratio": None, "bits": None, "error_feedback": True}
    assert dumped["selection"] == "random"
    assert dumped["lora"]["rank"] == 8 and dumped["lora"]["alpha"] == 16
    assert dumped["server_learning_rate"] == 1.0
    assert dumped["proximal_mu"] is None and dumped["server_momentum"] is None
    assert dumped["robust"] == {"trim_fraction": 0.2}
    assert dumped["dp"] == {"noise_multiplier": None, "clip_norm": None, "delta": 1e-5}
    assert dumped["seed"] == 0
    assert dumped["hpo"] == {"enabled": False, "trials": 0, "objective": "accuracy", "fixed": []}


def test_resolved_spec_validates_to_itself() -> None:
    for data in (
        {},
        {"algorithm": "fedprox"},
        {"server_momentum": 0.5},
        {"algorithm": "fedadam"},
        {"compression": {"method": "qsgd"}},
        {"dp": {"clip_norm": 1.0}},
    ):
        spec = JobSpec.model_validate(data)
        again = JobSpec.model_validate(json.loads(spec.model_dump_json()))
        assert again == spec


@pytest.mark.parametrize(("model", "lr"), [("mlp", 0.01), ("cnn", 0.01)])
def test_learning_rate_defaults_per_model(model: str, lr: float) -> None:
    assert make(model=model).learning_rate == lr


def test_learning_rate_defaults_for_resnet_and_lora() -> None:
    assert make(dataset="cifar10", model="resnet18").learning_rate == 0.001
    assert make(dataset="sst2").learning_rate == 0.001
    assert make(dataset="sst2").model == "minilm"


def test_dataset_model_compatibility() -> None:
    assert make(dataset="mnist", model="mlp").model == "mlp"
    assert make(dataset="cifar100").model == "cnn"
    assert make(dataset="ag_news", model="hf:distilbert-base-uncased").model == "hf:distilbert-base-uncased"
    errors = errors_of({"dataset": "cifar10", "model": "mlp"})
    assert "model" in errors and "cifar10" in errors["model"] and "mlp" in errors["model"]
    assert "model" in errors_of({"dataset": "digits", "model": "minilm"})
    assert "model" in errors_of({"dataset": "sst2", "model": "cnn"})
    assert "model" in errors_of({"model": "transformer9000"})
    assert "model" in errors_of({"dataset": "sst2", "model": "hf:"})


def test_csv_model_follows_text_column(tmp_path) -> None:
    text = tmp_path / "tickets.csv"
    text.write_text("text,label\nprinter broken,hw\nlogin fails,sw\n")
    numeric = tmp_path / "numbers.csv"
    numeric.write_text("a,b,label\n1,2,0\n3,4,1\n")

    def resolved(**raw: object) -> JobSpec:
        return JobSpec.model_validate(csv_model_resolve(raw))

    assert resolved(dataset="csv", dataset_path=str(text)).model == "minilm"
    assert resolved(dataset="csv", dataset_path=str(text), model="hf:bert-tiny").model == "hf:bert-tiny"
    assert resolved(dataset="csv", dataset_path=str(numeric)).model == "mlp"
    with pytest.raises(CsvModelMismatch, match="without a 'text' column takes mlp"):
        csv_model_resolve({"dataset": "csv", "dataset_path": str(numeric), "model": "minilm"})
    assert "dataset_path" in errors_of({"dataset": "csv"})


def test_the_spec_never_reads_the_csv(tmp_path) -> None:
    text = tmp_path / "tickets.csv"
    text.write_text("text,label\nprinter broken,hw\nlogin fails,sw\n")
    assert compatible_models("csv") == ["mlp", "minilm", "hf:"]
    assert make(dataset="csv", dataset_path=str(text)).model == "mlp"  # admission resolves it first


def test_csv_that_cannot_be_read_here_keeps_the_chosen_model(tmp_path) -> None:
    missing = str(tmp_path / "not-uploaded-yet.csv")
    assert make(dataset="csv", dataset_path=missing).model == "mlp"
    assert make(dataset="csv", dataset_path=missing, model="minilm").model == "minilm"
    assert "model" in errors_of({"dataset": "csv", "dataset_path": missing, "model": "resnet18"})


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"dataset": "imagenet"}, "dataset"),
        ({"algorithm": "fedsgd"}, "algorithm"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"selection": "fastest"}, "selection"),
        ({"num_clients": 0}, "num_clients"),
        ({"rounds": 0}, "rounds"),
        ({"local_epochs": 0}, "local_epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"learning_rate": -0.1}, "learning_rate"),
        ({"clients_per_round": 0}, "clients_per_round"),
        ({"num_clients": 5, "clients_per_round": 6}, "clients_per_round"),
        ({"partition": {"scheme": "dirichlet"}}, "partition.alpha"),
        ({"partition": {"scheme": "dirichlet", "alpha": 0}}, "partition.alpha"),
        ({"partition": {"scheme": "shards"}}, "partition.shards_per_client"),
        ({"partition": {"scheme": "shards", "shards_per_client": 0}}, "partition.shards_per_client"),
        ({"partition": {"scheme": "zipf"}}, "partition.scheme"),
        ({"compression": {"method": "topk", "ratio": 0}}, "compression.ratio"),
        ({"compression": {"method": "topk", "ratio": 1.5}}, "compression.ratio"),
        ({"compression": {"method": "qsgd", "bits": 0}}, "compression.bits"),
        ({"compression": {"method": "qsgd", "bits": 17}}, "compression.bits"),
        ({"compression": {"method": "int8", "bits": 4}}, "compression.bits"),
        ({"compression": {"method": "zip"}}, "compression.method"),
        ({"lora": {"rank": 0}}, "lora.rank"),
        ({"lora": {"alpha": 0}}, "lora.alpha"),
        ({"proximal_mu": -1}, "proximal_mu"),
        ({"server_learning_rate": 0}, "server_learning_rate"),
        ({"server_momentum": 1.0}, "server_momentum"),
        ({"server_momentum": -0.1}, "server_momentum"),
        ({"robust": {"trim_fraction": 0.5}}, "robust.trim_fraction"),
        ({"robust": {"trim_fraction": -0.1}}, "robust.trim_fraction"),
        ({"dp": {"noise_multiplier": 1.0}}, "dp.clip_norm"),
        ({"dp": {"clip_norm": -1}}, "dp.clip_norm"),
        ({"hpo": {"enabled": True}}, "hpo.trials"),
        ({"hpo": {"trials": -1}}, "hpo.trials"),
        ({"hpo": {"objective": "f1"}}, "hpo.objective"),
        ({"hpo": {"fixed": ["rounds", "colour"]}}, "hpo.fixed"),
        ({"algorithm": "flora"}, "algorithm"),
        ({"spec_version": 2}, "spec_version"),
        ({"epochs": 3}, "epochs"),
        ({"model": "cnn", "architecture": {"hidden": [64]}}, "architecture.hidden"),
        ({"attack": {"kind": "poison"}}, "attack.kind"),
    ],
)
def test_invalid_input_names_the_field(data: dict, field: str) -> None:
    assert field in errors_of(data)


def test_client_fraction_rules() -> None:
    assert make(num_clients=10, clients_per_round=10).clients_per_round == 10
    assert make(num_clients=10, clients_per_round=1).clients_per_round == 1


def test_implied_algorithms() -> None:
    assert make(server_momentum=0.5).algorithm == "fedavgm"
    assert make(proximal_mu=0.1).algorithm == "fedprox"
    assert make(algorithm="fedadam", proximal_mu=0.1).algorithm == "fedadam"


def test_algorithm_dependent_defaults() -> None:
    assert make(algorithm="fedprox").proximal_mu == 0.01
    assert make(algorithm="fedavgm").server_momentum == 0.9
    for name in ("fedadam", "fedyogi", "fedadagrad"):
        assert make(algorithm=name).server_learning_rate == 0.01
    for name in ("fedavg", "fedprox", "fedavgm", "scaffold"):
        assert make(algorithm=name).server_learning_rate == 1.0
    assert make(algorithm="fedadam", server_learning_rate=0.1).server_learning_rate == 0.1


def test_compression_and_dp_defaults() -> None:
    assert make(compression={"method": "int8"}).compression.bits == 8
    assert make(compression={"method": "topk"}).compression.ratio == 0.1
    assert make(compression={"method": "qsgd", "bits": 4}).compression.bits == 4
    dp = make(dp={"clip_norm": 1.0}).dp
    assert dp.enabled and dp.noise_multiplier == 0.0
    assert not make().dp.enabled


def test_attack_scales_default_per_kind() -> None:
    assert make(attack={"kind": "sign_flip"}).attack.scale == 4.0  # type: ignore[union-attr]
    assert make(attack={"kind": "gaussian"}).attack.scale == 1.0  # type: ignore[union-attr]
    assert make(attack={"kind": "scale"}).attack.scale == 10.0  # type: ignore[union-attr]
    assert make().attack is None


def test_field_names_and_diff() -> None:
    names = spec_field_names()
    assert {"rounds", "partition.alpha", "compression.bits", "hpo.fixed", "lora.rank"} <= names
    diff = spec_diff(make(), make(rounds=5, partition={"scheme": "dirichlet", "alpha": 0.1}))
    assert diff["rounds"] == (20, 5)
    assert diff["partition.scheme"] == ("iid", "dirichlet")
    assert "seed" not in diff


def test_json_schema_export_lists_every_field() -> None:
    schema = JobSpec.model_json_schema()
    assert schema["title"] == "JobSpec"
    for name in ("dataset", "algorithm", "partition", "compression", "dp", "hpo"):
        assert name in schema["properties"]
