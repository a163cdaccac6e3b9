"""The engine's configuration: strict parsing, defaults, one process-wide owner, thread policy."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from orchestrator.fl import config as engine
from orchestrator.fl.config import (
    REPO_DIR,
    EngineConfig,
    apply_torch_threads,
    configure_engine,
    engine_config,
    torch_threads_for,
)
from orchestrator.fl.dataset import data_dir, downloads_allowed
from orchestrator.fl.text import model_dir
from orchestrator.fl.text_data import download_cache_dir


@pytest.fixture
def restored_engine() -> Iterator[None]:
    """Whatever a test configures, the next test finds the engine as it was."""
    before = engine._configured
    threads = torch.get_num_threads()
    yield
    engine._configured = before
    torch.set_num_threads(threads)


def test_defaults_are_under_the_repository_var_directory():
    config = EngineConfig.from_environment({})
    assert config == EngineConfig(
        data_dir=REPO_DIR / "var" / "data",
        model_dir=REPO_DIR / "var" / "models",
        cache_dir=REPO_DIR / "var" / "cache",
        downloads_allowed=True,
        torch_threads=0,
    )


def test_every_variable_is_read(tmp_path: Path):
    config = EngineConfig.from_environment(
        {
            "FLOTILLA_DATA_DIR": str(tmp_path / "data"),
            "FLOTILLA_MODEL_DIR": str(tmp_path / "models"),
            "FLOTILLA_CACHE_DIR": "~/cache",
            "FLOTILLA_DOWNLOAD": " Off ",
            "FLOTILLA_TORCH_THREADS": "3",
        }
    )
    assert config.data_dir == tmp_path / "data" and config.model_dir == tmp_path / "models"
    assert config.cache_dir == Path.home() / "cache"
    assert config.downloads_allowed is False and config.torch_threads == 3


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("yes", True), ("0", False), ("no", False)])
def test_download_words(raw: str, expected: bool):
    assert EngineConfig.from_environment({"FLOTILLA_DOWNLOAD": raw}).downloads_allowed is expected


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("FLOTILLA_DOWNLOAD", "flase"),
        ("FLOTILLA_DOWNLOAD", "2"),
        ("FLOTILLA_TORCH_THREADS", "four"),
        ("FLOTILLA_TORCH_THREADS", "1.5"),
        ("FLOTILLA_TORCH_THREADS", "-1"),
    ],
)
def test_a_typo_raises_naming_the_variable(name: str, raw: str):
    with pytest.raises(ValueError, match=f"{name}='{raw}'"):
        EngineConfig.from_environment({name: raw})


def test_unconfigured_reads_the_environment_once(restored_engine: None, monkeypatch: pytest.MonkeyPatch):
    engine._configured = None
    monkeypatch.setenv("FLOTILLA_TORCH_THREADS", "5")
    assert engine_config().torch_threads == 5
    monkeypatch.setenv("FLOTILLA_TORCH_THREADS", "6")
    assert engine_config().torch_threads == 5


def test_the_configured_engine_is_what_every_reader_sees(restored_engine: None, tmp_path: Path):
    config = EngineConfig(
        data_dir=tmp_path / "d", model_dir=tmp_path / "m", cache_dir=tmp_path / "c", downloads_allowed=False
    )
    configure_engine(config)
    assert engine_config() is config
    assert (data_dir(), model_dir(), download_cache_dir()) == (tmp_path / "d", tmp_path / "m", tmp_path / "c")
    assert downloads_allowed() is False


def test_threads_split_the_cores_between_processes(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(engine, "usable_cores", lambda: 8)
    decide = EngineConfig(torch_threads=0)
    assert [torch_threads_for(decide, processes) for processes in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
    assert torch_threads_for(replace(decide, torch_threads=3), 2) == 3


def test_apply_sets_torch_threads(restored_engine: None, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(engine, "usable_cores", lambda: 2)
    assert apply_torch_threads(EngineConfig(torch_threads=1)) == 1 == torch.get_num_threads()
    assert apply_torch_threads(EngineConfig(), processes=1) == 2 == torch.get_num_threads()
