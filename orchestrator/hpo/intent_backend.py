"""The intent parser's generative backends as HPO's `JsonCompleter` (llm.py).

The same configuration selects them (`INTENT_BACKEND=transformers` with
`INTENT_LM_PATH`, or `INTENT_BACKEND=openai` with `INTENT_OPENAI_BASE_URL` and
`INTENT_OPENAI_MODEL`; see intent_llm/README.md); with the default encoder
backend there is no generative model and HPO runs without an LLM proposer. The
backends keep their transport and constrained decoding; only the instructions
and the JSON schema differ: HPO's, given with each question through the backends'
`complete(prompt, *, schema, system)`.

This module depends on intent_llm only; llm.py uses it, not the other way round.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.conf import settings

from intent_llm.configuration import BackendSettings

if TYPE_CHECKING:
    from intent_llm.backends import SchemaCompletion

SYSTEM_PROMPT = (
    "You are an expert in federated learning who tunes job specs. Read the trials so far and "
    "answer only with JSON that follows the given schema."
)
SCHEMA_NAME = "hpo_proposals"


class BackendCompleter:
    """`complete_json(prompt, schema)` on an intent_llm generative backend, with HPO's instructions."""

    def __init__(self, backend: SchemaCompletion) -> None:
        self.backend = backend

    def complete_json(self, prompt: str, schema: dict[str, Any]) -> str:
        return self.backend.complete(prompt, schema=schema, system=SYSTEM_PROMPT, schema_name=SCHEMA_NAME)


def configured_completer() -> BackendCompleter | None:
    """The configured generative backend (FLOTILLA_INTENT_BACKEND), loaded once per process;
    None when none is configured."""
    backend: BackendSettings = settings.FLOTILLA_INTENT_BACKEND
    return _completer(backend) if backend.generative else None


@lru_cache(maxsize=2)
def _completer(backend: BackendSettings) -> BackendCompleter:
    if backend.name == "transformers":
        return transformers_completer(backend.lm_path, max_new_tokens=backend.max_new_tokens)
    return openai_completer(backend.base_url, backend.model, api_key=backend.api_key, timeout=backend.timeout)


def transformers_completer(path: str, *, max_new_tokens: int = 512) -> BackendCompleter:
    """A local causal LM, its decoding constrained to each question's schema (lm-format-enforcer)."""
    from intent_llm.backends import TransformersBackend

    return BackendCompleter(TransformersBackend(path, max_new_tokens=max_new_tokens))


def openai_completer(base_url: str, model: str, *, api_key: str | None, timeout: float) -> BackendCompleter:
    """An OpenAI-compatible chat endpoint, the schema sent as `response_format` (json_schema)."""
    from intent_llm.backends import OpenAICompatibleBackend

    return BackendCompleter(OpenAICompatibleBackend(base_url, model, api_key, timeout))
