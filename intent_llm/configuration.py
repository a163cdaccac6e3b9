"""The parser's configuration from the environment, read once by whoever configures the
process (Django settings for the web app and workers, `python -m intent_llm` for the CLI).

Standard library only, so settings can validate it at start without loading torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_THREADS = 1  # torch threads for the encoder: fastest on a shared machine

BACKENDS = ("encoder", "transformers", "openai")


class ConfigurationError(RuntimeError):
    pass


def parse_int(name: str, value: str, *, minimum: int) -> int:
    """A whole-number variable's value, `minimum` or more; anything else raises, naming the variable."""
    try:
        number = int(value)
    except ValueError:
        raise ConfigurationError(f"{name}={value!r}: expected a whole number") from None
    if number < minimum:
        raise ConfigurationError(f"{name}={value!r}: expected {minimum} or more")
    return number


def parse_float(name: str, value: str) -> float:
    """A positive number of seconds; anything else raises, naming the variable."""
    try:
        number = float(value)
    except ValueError:
        raise ConfigurationError(f"{name}={value!r}: expected a number") from None
    if not number > 0 or number == float("inf"):
        raise ConfigurationError(f"{name}={value!r}: expected a positive number")
    return number


def intent_threads(environ: Mapping[str, str]) -> int:
    """INTENT_THREADS: torch threads for the encoder in `python -m intent_llm` (default 1)."""
    value = environ.get("INTENT_THREADS")
    return DEFAULT_THREADS if value is None else parse_int("INTENT_THREADS", value, minimum=1)


@dataclass(frozen=True)
class BackendSettings:
    """Which backend reads prompts, from the environment:

    INTENT_BACKEND=encoder (default) | transformers | openai
    INTENT_LM_PATH                   transformers: a local causal LM directory
    INTENT_LM_MAX_NEW_TOKENS         transformers: generation budget (default 512)
    INTENT_OPENAI_BASE_URL           openai: e.g. http://127.0.0.1:11434/v1 (Ollama), http://host:8000/v1 (vLLM)
    INTENT_OPENAI_MODEL              openai: the served model's name
    INTENT_OPENAI_API_KEY            openai: sent as a Bearer token when set
    INTENT_OPENAI_TIMEOUT            openai: seconds (default 60)

    HPO's LLM proposer uses the same generative backend.
    """

    name: str = "encoder"
    lm_path: str = ""
    max_new_tokens: int = 512
    base_url: str = ""
    model: str = ""
    api_key: str | None = None
    timeout: float = 60.0

    @property
    def generative(self) -> bool:
        return self.name != "encoder"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> BackendSettings:
        """The settings from `environ` (the caller's configuration; the process environment only
        where a caller passes none). A value that does not parse raises ConfigurationError naming
        the variable."""
        env = environ
        settings = cls(
            name=env.get("INTENT_BACKEND", "encoder").strip().lower(),
            lm_path=env.get("INTENT_LM_PATH", ""),
            max_new_tokens=parse_int(
                "INTENT_LM_MAX_NEW_TOKENS", env.get("INTENT_LM_MAX_NEW_TOKENS", "512"), minimum=1
            ),
            base_url=env.get("INTENT_OPENAI_BASE_URL", ""),
            model=env.get("INTENT_OPENAI_MODEL", ""),
            api_key=env.get("INTENT_OPENAI_API_KEY") or None,
            timeout=parse_float("INTENT_OPENAI_TIMEOUT", env.get("INTENT_OPENAI_TIMEOUT", "60")),
        )
        if settings.name not in BACKENDS:
            raise ConfigurationError(
                f"INTENT_BACKEND must be encoder, transformers or openai, not {settings.name!r}"
            )
        if settings.name == "transformers" and not settings.lm_path:
            raise ConfigurationError(
                "INTENT_BACKEND=transformers needs INTENT_LM_PATH (a local causal LM directory)"
            )
        if settings.name == "openai" and not (settings.base_url and settings.model):
            raise ConfigurationError(
                "INTENT_BACKEND=openai needs INTENT_OPENAI_BASE_URL and INTENT_OPENAI_MODEL"
            )
        return settings
