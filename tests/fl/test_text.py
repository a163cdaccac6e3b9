"""MiniLM + LoRA through the engine: only adapters and head travel, the base never does."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import csv
import shutil
from pathlib import Path

import pytest
import torch

from jobspec import JobSpec
from orchestrator.fl import engine
from orchestrator.fl.data import Dataset
from orchestrator.fl.lora import MERGED_A_SUFFIX, is_adapter_key, is_merged_key
from orchestrator.fl.models import (
    build_model,
    federated_keys,
    get_weights,
    set_weights,
    uploaded_keys,
)
from orchestrator.fl.text import (
    MAX_SEQ_LENGTH,
    LoraTextClassifier,
    ModelUnavailable,
    full_model_upload_bytes,
    hf_model_location_error,
    load_backbone,
    minilm_path,
    path_inside_model_dir,
    resolve_model_source,
)
from orchestrator.fl.wire import decode_message

# A handful of hand-written sentences: enough rows for a stratified split and two clients.
SENTENCES = [
    ("a warm and funny film", "positive"),
    ("dull, long and lifeless", "negative"),
    ("the best thing I saw this year", "positive"),
    ("a tedious mess", "negative"),
    ("charming performances all round", "positive"),
    ("I walked out after an hour", "negative"),
    ("smart, moving and beautifully shot", "positive"),
    ("the plot makes no sense", "negative"),
    ("a delight from start to finish", "positive"),
    ("painfully boring", "negative"),
]


@pytest.fixture(scope="module")
def text_csv(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("text") / "reviews.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(SENTENCES)
    return str(path)


def lora_spec(text_csv: str, **overrides) -> JobSpec:
    return JobSpec.model_validate(
        {
            "dataset": "csv",
            "dataset_path": text_csv,
            "model": "minilm",
            "num_clients": 2,
            "rounds": 1,
            "batch_size": 4,
            "lora": {"rank": 4, "alpha": 8},
            **overrides,
        }
    )


def tiny_dataset() -> Dataset:
    texts = [text for text, _ in SENTENCES]
    labels = torch.tensor([int(label == "positive") for _, label in SENTENCES])
    return Dataset("csv", texts, labels, texts[:2], labels[:2], ("negative", "positive"))


def test_adapter_state_round_trips_and_excludes_the_base():
    spec = JobSpec.model_validate({"dataset": "sst2", "model": "minilm", "lora": {"rank": 4, "alpha": 8}})
    dataset = tiny_dataset()
    model = build_model(spec, dataset)
    assert isinstance(model, LoraTextClassifier)
    weights = get_weights(model)
    assert all(is_adapter_key(key) or key.startswith("head.") for key in weights)
    assert len([key for key in weights if is_adapter_key(key)]) == 2 * 2 * 6  # q and v in 6 layers
    assert model.target_modules == ["query", "value"]
    base_keys = set(load_backbone(resolve_model_source("minilm")).model.state_dict())
    assert not {key.removeprefix("encoder.") for key in weights} & base_keys

    trained = {key: value + 0.01 * torch.randn_like(value) for key, value in weights.items()}
    set_weights(model, trained)
    reloaded = get_weights(model)
    assert all(torch.equal(reloaded[key], trained[key]) for key in trained)

    other = build_model(spec.model_copy(update={"seed": 1}), dataset)
    assert isinstance(other, LoraTextClassifier)
    shared = [m.encoder.get_parameter("embeddings.word_embeddings.weight").data_ptr() for m in (model, other)]
    assert shared[0] == shared[1]  # one frozen base per process, whatever the number of models
    set_weights(other, trained)
    assert isinstance(dataset.x_test, list)
    features = model.encode_texts(dataset.x_test)
    model.eval()
    other.eval()
    with torch.no_grad():
        assert torch.allclose(model(**features), other(**features), atol=1e-5)


def test_texts_are_truncated_to_the_documented_length():
    model = build_model(JobSpec.model_validate({"dataset": "sst2", "model": "minilm"}), tiny_dataset())
    assert isinstance(model, LoraTextClassifier)
    encoded = model.encode_texts(["word " * 400, "short"])
    assert encoded["input_ids"].shape == (2, MAX_SEQ_LENGTH)
    assert model.encode_texts(["word " * 400, "short"]) is encoded  # tokenized once


@pytest.mark.parametrize("algorithm", ["fedavg", "flora", "fedprox", "fedadam", "median", "scaffold"])
def test_a_round_sends_only_adapters_and_head(text_csv: str, algorithm: str):
    spec = lora_spec(text_csv, algorithm=algorithm)
    weights, state = engine.job_initialize(spec)
    model = engine.runtime_for(spec).model
    frozen = set(model.state_dict()) - set(federated_keys(model))
    assert any(key.endswith("query.base_layer.weight") for key in frozen)
    instructions = engine.round_configure(spec, 1, state)
    uplinks = []
    for ins in instructions:
        downlink = engine.downlink_message(spec, weights, state, ins)
        uplink, _, report = engine.client_fit(spec, downlink, client_state=None)
        for payload in (downlink, uplink):
            # Tensor names are prefixed by their role ("w/", "u/", "x/c/" ...): keep the model key.
            names = {name.rsplit("/", 1)[-1] for name in decode_message(payload)[0]}
            assert not names & frozen
            assert any(is_adapter_key(name) for name in names)
        uploaded = {name.rsplit("/", 1)[-1] for name in decode_message(uplink)[0]}
        assert not any(is_merged_key(name) for name in uploaded)  # the merged update only travels down
        assert report.bytes_up < 0.02 * full_model_upload_bytes(model)
        uplinks.append(uplink)
    new_weights, _, metrics = engine.round_aggregate(spec, 1, weights, state, uplinks)
    accuracy, loss = engine.evaluate_weights(spec, new_weights)
    assert 0.0 <= accuracy <= 1.0 and loss > 0
    if algorithm == "flora":
        merged = [key for key in new_weights if key.endswith(MERGED_A_SUFFIX)]
        assert len(merged) == 12 and all(new_weights[key].shape[0] == 2 * 4 for key in merged)
        assert metrics["flora_merged_rank"] == 8
        assert set(uploaded_keys(model)) == {key for key in new_weights if not is_merged_key(key)}


def test_hf_local_model_loads_from_inside_the_model_directory(tmp_path: Path):
    models_root = tmp_path / "models"
    shutil.copytree(minilm_path(), models_root / "my-minilm")
    source = resolve_model_source("hf:my-minilm", models_root=models_root)
    assert source.local and Path(source.location) == (models_root / "my-minilm").resolve()
    assert hf_model_location_error("hf:my-minilm", models_root) is None
    assert hf_model_location_error(f"hf:{models_root}/my-minilm", models_root) is None
    assert "model directory" in (hf_model_location_error(f"hf:{minilm_path()}", models_root) or "")
    assert hf_model_location_error("hf:sentence-transformers/all-MiniLM-L6-v2", models_root) is None
    backbone = load_backbone(source)
    assert backbone.config.model_type == "bert"


def test_path_inside_model_dir_resolves_escapes(tmp_path: Path):
    root = tmp_path / "models"
    (root / "a").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    assert path_inside_model_dir(root / "a", root)
    assert not path_inside_model_dir(root / ".." / "outside", root)
    assert not path_inside_model_dir(root / "link", root)


def test_an_unreachable_hub_model_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match="cannot load model 'flotilla-tests/no-such-model'"):
        load_backbone(resolve_model_source("hf:flotilla-tests/no-such-model"))
