"""Building the shipped parser from intent_llm/model/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

from .backends import GenerativeParser, OpenAICompatibleBackend, TransformersBackend
from .configuration import BackendSettings
from .decode import ParseResult, PathResolver
from .featurize import build_corrector
from .model import NeuralPredictor
from .parser import IntentParser

MODEL_DIR = Path(__file__).parent / "model"


def load_parser(directory: Path = MODEL_DIR, members: list[str] | None = None) -> IntentParser:
    """The fine-tuned ensemble (each member's LoRA merged into its weights, and its heads);
    `members` picks some of them by name, to score them alone. Reads no environment and leaves
    torch's threads to the process (`python -m intent_llm` sets them from INTENT_THREADS)."""
    if not (directory / "config.json").exists():
        raise FileNotFoundError(f"no trained intent model in {directory}: run `python -m intent_llm train`")
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    return IntentParser(
        build_corrector(config["domain_vocabulary"]), NeuralPredictor.load(directory, members)
    )


class PromptParser(Protocol):
    def parse(self, prompt: str, resolve_path: PathResolver | None = None) -> ParseResult: ...


def load_configured_parser(settings: BackendSettings) -> PromptParser:
    """The parser `settings` select (`BackendSettings.from_environment(environ)`, by whoever
    configures the process); the fine-tuned encoder by default."""
    if settings.name == "transformers":
        return GenerativeParser(TransformersBackend(settings.lm_path, max_new_tokens=settings.max_new_tokens))
    if settings.name == "openai":
        return GenerativeParser(
            OpenAICompatibleBackend(settings.base_url, settings.model, settings.api_key, settings.timeout)
        )
    return load_parser()
