"""The intent parser's generative backends as HPO's `JsonCompleter`.

The same configuration selects them (`INTENT_BACKEND=transformers` with
`INTENT_LM_PATH`, or `INTENT_BACKEND=openai` with `INTENT_OPENAI_BASE_URL` and
`INTENT_OPENAI_MODEL`; see intent_llm/README.md); with the default encoder
backend there is no generative model and HPO runs without an LLM proposer. The
backends keep their transport and constrained decoding; only the instructions
and the JSON schema differ: HPO's, given with each question.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from intent_llm.loading import BackendSettings

from .llm import JsonCompleter

SYSTEM_PROMPT = (
    "You are an expert in federated learning who tunes job specs. Read the trials so far and "
    "answer only with JSON that follows the given schema."
)


def configured_completer() -> JsonCompleter | None:
    """The configured generative backend, loaded once per process; None when none is configured."""
    settings = BackendSettings.from_environment()
    return _completer(settings) if settings.generative else None


@lru_cache(maxsize=2)
def _completer(settings: BackendSettings) -> JsonCompleter:
    if settings.name == "transformers":
        return transformers_completer(settings.lm_path, max_new_tokens=settings.max_new_tokens)
    return openai_completer(
        settings.base_url, settings.model, api_key=settings.api_key, timeout=settings.timeout
    )


def transformers_completer(path: str, *, max_new_tokens: int = 512) -> JsonCompleter:
    """A local causal LM, its decoding constrained to each question's schema (lm-format-enforcer)."""
    from lmformatenforcer import CharacterLevelParserConfig, JsonSchemaParser

    from intent_llm.backends import TransformersBackend

    class Completer(TransformersBackend):
        system_prompt = SYSTEM_PROMPT
        plain_prompt = "{system}\n\n{prompt}\nJSON: "

        def complete_json(self, prompt: str, schema: dict[str, Any]) -> str:
            self.schema_parser = JsonSchemaParser(
                schema, CharacterLevelParserConfig(max_consecutive_whitespaces=1)
            )
            return self.complete(prompt)

    return Completer(path, max_new_tokens=max_new_tokens)


def openai_completer(base_url: str, model: str, *, api_key: str | None, timeout: float) -> JsonCompleter:
    """An OpenAI-compatible chat endpoint, the schema sent as `response_format` (json_schema)."""
    from intent_llm.backends import OpenAICompatibleBackend

    class Completer(OpenAICompatibleBackend):
        schema: dict[str, Any] = {}

        def request_body(self, prompt: str) -> dict[str, Any]:
            return {
                "model": self.model,
                "messages": [
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": prompt},
                ],
                "temperature": 0,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "hpo_proposals", "schema": self.schema, "strict": True},
                },
            }

        def complete_json(self, prompt: str, schema: dict[str, Any]) -> str:
            self.schema = schema
            return self.complete(prompt)

    return Completer(base_url, model, api_key, timeout)
