"""Building the shipped parser from intent_llm/model/."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from .backends import GenerativeParser, OpenAICompatibleBackend, TransformersBackend
from .decode import ParseResult, PathResolver
from .featurize import build_corrector
from .model import NeuralPredictor
from .parser import IntentParser

MODEL_DIR = Path(__file__).parent / "model"


def load_parser(directory: Path = MODEL_DIR, members: list[str] | None = None) -> IntentParser:
    """The fine-tuned ensemble (each member's LoRA merged into its weights, and its heads);
    `members` picks some of them by name, to score them alone."""
    if not (directory / "config.json").exists():
        raise FileNotFoundError(f"no trained intent model in {directory}: run `python -m intent_llm train`")
    torch.set_num_threads(int(os.environ.get("INTENT_THREADS", "1")))
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    return IntentParser(
        build_corrector(config["domain_vocabulary"]), NeuralPredictor.load(directory, members)
    )


class PromptParser(Protocol):
    def parse(self, prompt: str, resolve_path: PathResolver | None = None) -> ParseResult: ...


BACKENDS = ("encoder", "transformers", "openai")


class ConfigurationError(RuntimeError):
    pass


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
    def from_environment(cls) -> BackendSettings:
        env = os.environ
        settings = cls(
            name=env.get("INTENT_BACKEND", "encoder").strip().lower(),
            lm_path=env.get("INTENT_LM_PATH", ""),
            max_new_tokens=int(env.get("INTENT_LM_MAX_NEW_TOKENS", "512")),
            base_url=env.get("INTENT_OPENAI_BASE_URL", ""),
            model=env.get("INTENT_OPENAI_MODEL", ""),
            api_key=env.get("INTENT_OPENAI_API_KEY") or None,
            timeout=float(env.get("INTENT_OPENAI_TIMEOUT", "60")),
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


def load_configured_parser() -> PromptParser:
    """The parser the environment selects (`BackendSettings`); the fine-tuned encoder by default."""
    settings = BackendSettings.from_environment()
    if settings.name == "transformers":
        return GenerativeParser(TransformersBackend(settings.lm_path, max_new_tokens=settings.max_new_tokens))
    if settings.name == "openai":
        return GenerativeParser(
            OpenAICompatibleBackend(settings.base_url, settings.model, settings.api_key, settings.timeout)
        )
    return load_parser()
