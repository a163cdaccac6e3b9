"""The engine's configuration: one owner, read once.

`EngineConfig` holds everything the engine takes from its deployment: where data
sets, local models and downloaded archives live, whether missing files may be
downloaded, and how many torch threads a process uses. `from_environment()` is the
only place in the engine that reads environment variables; a value it cannot read
stops the start, naming the variable. A process configures the engine once at its
start (`configure_engine`): the command-line tools from the environment, the web
app and the workers from Django settings. A process that configured nothing gets
`from_environment()` on first use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

REPO_DIR = Path(__file__).resolve().parents[2]

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")


def parse_bool(name: str, value: str) -> bool:
    """A boolean variable's value; anything but the words below raises, naming the variable."""
    word = value.strip().lower()
    if word not in TRUE_WORDS + FALSE_WORDS:
        raise ValueError(f"{name}={value!r}: use one of {', '.join(TRUE_WORDS + FALSE_WORDS[:-1])}")
    return word in TRUE_WORDS


def parse_threads(name: str, value: str) -> int:
    """A thread count: a whole number, 0 or more (0 = decide from the cores)."""
    try:
        threads = int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r}: expected a whole number (0 = decide from the cores)") from None
    if threads < 0:
        raise ValueError(f"{name}={value!r}: expected 0 or more (0 = decide from the cores)")
    return threads


@dataclass(frozen=True)
class EngineConfig:
    data_dir: Path = REPO_DIR / "var" / "data"
    model_dir: Path = REPO_DIR / "var" / "models"  # local `hf:` models on the server must lie inside it
    cache_dir: Path = REPO_DIR / "var" / "cache"  # fetched source archives, shared by every data directory
    downloads_allowed: bool = True
    torch_threads: int = 0  # intra-op threads per process; 0 = decide from the cores (torch_threads_for)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> EngineConfig:
        """FLOTILLA_DATA_DIR, FLOTILLA_MODEL_DIR, FLOTILLA_CACHE_DIR, FLOTILLA_DOWNLOAD and
        FLOTILLA_TORCH_THREADS; an unset variable takes the default above."""
        defaults = cls()

        def path(name: str, default: Path) -> Path:
            return Path(environ.get(name, default)).expanduser()

        download = environ.get("FLOTILLA_DOWNLOAD")
        threads = environ.get("FLOTILLA_TORCH_THREADS")
        return cls(
            data_dir=path("FLOTILLA_DATA_DIR", defaults.data_dir),
            model_dir=path("FLOTILLA_MODEL_DIR", defaults.model_dir),
            cache_dir=path("FLOTILLA_CACHE_DIR", defaults.cache_dir),
            downloads_allowed=(
                defaults.downloads_allowed if download is None else parse_bool("FLOTILLA_DOWNLOAD", download)
            ),
            torch_threads=(
                defaults.torch_threads
                if threads is None
                else parse_threads("FLOTILLA_TORCH_THREADS", threads)
            ),
        )


_configured: EngineConfig | None = None


def configure_engine(config: EngineConfig) -> None:
    """Set this process's engine configuration (once, at the start of the process)."""
    global _configured
    _configured = config


def engine_config() -> EngineConfig:
    """This process's engine configuration; from the environment if nobody configured it."""
    global _configured
    if _configured is None:
        _configured = EngineConfig.from_environment()
    return _configured


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform reports it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def torch_threads_for(config: EngineConfig, processes: int) -> int:
    """Intra-op torch threads for one of `processes` processes sharing this machine's cores.

    config.torch_threads when set, otherwise max(1, cores // processes): several
    processes on one machine then do not oversubscribe its cores.
    """
    return config.torch_threads or max(1, usable_cores() // max(1, processes))


def apply_torch_threads(config: EngineConfig, *, processes: int = 1) -> int:
    """Set this process's torch threads (`torch_threads_for`); the one place the engine's
    processes choose them. Returns the count in force."""
    import torch

    threads = torch_threads_for(config, processes)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def configure_from_environment(**overrides: Any) -> EngineConfig:
    """A CLI's start: the engine configured from the environment (with `overrides`) and its
    torch threads set. Raises ValueError naming a variable that does not parse."""
    config = replace(EngineConfig.from_environment(), **overrides)
    configure_engine(config)
    apply_torch_threads(config)
    return config
