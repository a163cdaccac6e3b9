"""Building the shipped parser from intent_llm/model/."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol

import torch

from .backends import GenerativeParser, OpenAICompatibleBackend, TransformersBackend
from .decode import ParseResult, PathResolver
from .featurize import build_corrector
from .model import NeuralPredictor
from .ngram import NgramModel
from .parser import IntentParser

MODEL_DIR = Path(__file__).parent / "model"


def load_parser(directory: Path = MODEL_DIR) -> IntentParser:
    """The fine-tuned encoder (LoRA merged) and the n-gram model, averaged."""
    if not (directory / "config.json").exists():
        raise FileNotFoundError(f"no trained intent model in {directory}: run `python -m intent_llm train`")
    torch.set_num_threads(int(os.environ.get("INTENT_THREADS", "1")))
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    corrector = build_corrector(config["domain_vocabulary"])
    weight = float(config["neural_weight"])
    return IntentParser(
        corrector, [NeuralPredictor.load(directory), NgramModel.load(directory)], [weight, 1 - weight]
    )


class PromptParser(Protocol):
    def parse(self, prompt: str, resolve_path: PathResolver | None = None) -> ParseResult: ...


def load_configured_parser() -> PromptParser:
    """The parser the environment selects; the fine-tuned encoder unless configured otherwise.

    INTENT_BACKEND=encoder (default) | transformers | openai
    INTENT_LM_PATH                   transformers: a local causal LM directory
    INTENT_LM_MAX_NEW_TOKENS         transformers: generation budget (default 512)
    INTENT_OPENAI_BASE_URL           openai: e.g. http://127.0.0.1:11434/v1 (Ollama), http://host:8000/v1 (vLLM)
    INTENT_OPENAI_MODEL              openai: the served model's name
    INTENT_OPENAI_API_KEY            openai: sent as a Bearer token when set
    INTENT_OPENAI_TIMEOUT            openai: seconds (default 60)
    """
    backend = os.environ.get("INTENT_BACKEND", "encoder").strip().lower()
    if backend == "encoder":
        return load_parser()
    if backend == "transformers":
        path = os.environ.get("INTENT_LM_PATH")
        if not path:
            raise ConfigurationError(
                "INTENT_BACKEND=transformers needs INTENT_LM_PATH (a local causal LM directory)"
            )
        tokens = int(os.environ.get("INTENT_LM_MAX_NEW_TOKENS", "512"))
        return GenerativeParser(TransformersBackend(path, max_new_tokens=tokens))
    if backend == "openai":
        base_url = os.environ.get("INTENT_OPENAI_BASE_URL")
        model = os.environ.get("INTENT_OPENAI_MODEL")
        if not base_url or not model:
            raise ConfigurationError(
                "INTENT_BACKEND=openai needs INTENT_OPENAI_BASE_URL and INTENT_OPENAI_MODEL"
            )
        timeout = float(os.environ.get("INTENT_OPENAI_TIMEOUT", "60"))
        return GenerativeParser(
            OpenAICompatibleBackend(base_url, model, os.environ.get("INTENT_OPENAI_API_KEY"), timeout)
        )
    raise ConfigurationError(f"INTENT_BACKEND must be encoder, transformers or openai, not {backend!r}")


class ConfigurationError(RuntimeError):
    pass
