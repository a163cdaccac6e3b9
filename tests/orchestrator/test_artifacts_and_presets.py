from __future__ import annotations

from pathlib import Path

import pytest
import torch

from jobspec import JobSpec
from jobspec.reference import reference
from orchestrator import artifacts
from orchestrator.fl.records import ServerState
from orchestrator.presets import PRESETS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def artifact_root(settings, tmp_path: Path) -> Path:
    settings.FLOTILLA_ARTIFACT_DIR = tmp_path
    return tmp_path


def test_weights_and_server_state_round_trip(artifact_root: Path) -> None:
    weights = {"layer.weight": torch.randn(3, 2), "layer.bias": torch.zeros(3)}
    artifacts.weights_save("7-a", 2, weights, {"round": 2})
    loaded = artifacts.weights_load("7-a", 2)
    assert set(loaded) == set(weights)
    assert all(torch.equal(loaded[k], weights[k]) for k in weights)

    state = ServerState(tensors={"momentum": torch.ones(4)}, meta={"seen": [1, 2]})
    artifacts.server_state_save("7-a", 2, state)
    again = artifacts.server_state_load("7-a", 2)
    assert again.meta == {"seen": [1, 2]} and torch.equal(again.tensors["momentum"], torch.ones(4))
    assert not list(artifact_root.rglob("*.part"))


def test_a_client_reads_its_latest_state_before_the_round(artifact_root: Path) -> None:
    for server_round in (1, 3, 4):
        artifacts.client_state_save("1-a", 5, server_round, {"ef/w": torch.full((2,), float(server_round))})
    assert artifacts.client_state_load("1-a", 5, before_round=1) is None
    state = artifacts.client_state_load("1-a", 5, before_round=4)
    assert state is not None and state["ef/w"].tolist() == [3.0, 3.0]

    artifacts.round_scratch_delete("1-a", completed_round=3)
    remaining = sorted(p.name for p in (artifacts.job_dir("1-a") / "clients" / "0005").iterdir())
    assert remaining == ["round-0003.safetensors", "round-0004.safetensors"]


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.key)
def test_every_preset_is_a_valid_spec(preset) -> None:
    if preset.prepare is not None:
        preset.prepare()
    JobSpec.model_validate(preset.spec)


def test_the_committed_spec_reference_is_current() -> None:
    committed = (REPO / "docs" / "jobspec.md").read_text(encoding="utf-8")
    assert committed == reference(), "run: python -m jobspec.reference > docs/jobspec.md"
