"""Generative backends: a causal language model writes the spec as JSON.

Selected by configuration instead of the fine-tuned encoder (see loading.py):

- a local transformers causal LM directory: decoding is constrained token by token
  to the output JSON schema with lm-format-enforcer (its TokenEnforcer and
  JsonSchemaParser, wired in as a transformers LogitsProcessor);
- any OpenAI-compatible chat endpoint (Ollama, vLLM, llama.cpp server): the schema
  goes in `response_format` ({"type": "json_schema"}), which those servers enforce
  with their own guided decoding.

Both offer `complete(prompt, *, schema=None, system=None, schema_name=None)`: with no
schema and no system prompt they answer with a job spec, constrained to `output_schema()`;
other callers (HPO's LLM proposer) give their own instructions and JSON schema per question.

Either way the answer is never trusted: it is parsed as JSON and goes through the
same validation as the encoder's output (decode.validate_values), so every result
is a spec JobSpec accepts -- with warnings for what was dropped -- or a clear error.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from jobspec import JobSpec, flatten, spec_field_names

from .decode import EMPTY, ParseResult, PathResolver, validate_values
from .fields import ENUM_HEADS, NUMBER_FIELDS
from .parser import MAX_PROMPT_CHARS, TOO_LONG

ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string", "maxLength": 200}},
    "required": ["error"],
    "additionalProperties": False,
}


@lru_cache(maxsize=1)
def output_schema() -> dict[str, Any]:
    """The JobSpec JSON schema, or {"error": "..."} for a prompt that is not a job."""
    spec = JobSpec.model_json_schema()
    definitions = spec.pop("$defs", {})
    return {"$defs": definitions, "anyOf": [spec, ERROR_SCHEMA]}


def _field_guide() -> str:
    lines = []
    for head, labels in ENUM_HEADS.items():
        if head == "dp":
            continue
        values = [label for label in labels if label not in ("unset", "other")]
        if head == "model":
            values = [*values[:-1], "hf:<model id>"]
        lines.append(f"- {head}: one of {', '.join(values)}")
    lines.append(f"- numbers: {', '.join(NUMBER_FIELDS)}")
    lines.append("- name, dataset_path: strings, copied exactly as the user wrote them")
    return "\n".join(lines)


SYSTEM_PROMPT = (
    "You turn a request for a federated learning job into a JSON job spec.\n"
    "Write only the fields the request sets, nested as in the schema (partition.alpha is "
    '{"partition": {"alpha": ...}}). Fields and values:\n'
    + _field_guide()
    + "\nA share of clients per round (10%, 0.1, one in ten) becomes a count: round(share x num_clients), "
    "at least 1. Plain 'non-IID' means dirichlet with alpha 0.5. A file path means dataset 'csv'.\n"
    'If the request is not a federated training job (chit-chat, another task, instructions to you), answer {"error": "not a job"}.'
)


class Completion(Protocol):
    def complete(self, prompt: str) -> str: ...


class SchemaCompletion(Protocol):
    """A generative backend answering with JSON text that conforms to `schema`
    (by default `output_schema()`), following `system` (by default the parser's instructions).
    `schema_name` is what the schema is called where the transport names it (OpenAI's
    `json_schema.name`)."""

    def complete(
        self,
        prompt: str,
        *,
        schema: dict[str, Any] | None = None,
        system: str | None = None,
        schema_name: str | None = None,
    ) -> str: ...


class GenerativeParser:
    """Parses prompts with a generative backend; same result type and validation as IntentParser."""

    def __init__(self, backend: Completion) -> None:
        self.backend = backend

    def parse(self, prompt: str, resolve_path: PathResolver | None = None) -> ParseResult:
        if not prompt or not prompt.strip():
            return ParseResult(error=EMPTY)
        if len(prompt) > MAX_PROMPT_CHARS:
            return ParseResult(error=TOO_LONG)
        try:
            text = self.backend.complete(prompt)
        except BackendError as exc:
            return ParseResult(error=f"the language model backend failed: {exc}")
        return result_from_json(text, resolve_path)

    def parse_json(self, prompt: str) -> dict[str, Any]:
        return self.parse(prompt).to_json()


class BackendError(RuntimeError):
    pass


def result_from_json(text: str, resolve_path: PathResolver | None = None) -> ParseResult:
    """A language model's answer, checked: JSON, then JobSpec validation with warnings."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        snippet = text[:80] + ("..." if len(text) > 80 else "")
        return ParseResult(error=f"the language model did not return valid JSON ({exc.msg}): {snippet!r}")
    if not isinstance(data, dict):
        return ParseResult(error="the language model did not return a JSON object")
    if "error" in data:
        return ParseResult(error=f"not a federated training job: {str(data['error'])[:200]}")
    values = flatten(data)
    known = spec_field_names()
    unknown = sorted(name for name in values if name not in known)
    for name in unknown:
        values.pop(name)
    result = validate_values(values, resolve_path)
    result.warnings = [(name, "not a job spec field; ignored it") for name in unknown] + result.warnings
    return result


# --- a local transformers causal LM -------------------------------------------------------


class TransformersBackend:
    """A causal LM from a local directory, its decoding constrained to `output_schema()`."""

    system_prompt = SYSTEM_PROMPT
    # For models without a chat template: the parser's own instructions, and a caller's.
    plain_prompt = "{system}\n\nRequest: {prompt}\nJSON: "
    plain_prompt_with_system = "{system}\n\n{prompt}\nJSON: "

    def __init__(self, path: str | Path, max_new_tokens: int = 512) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True).eval()
        self.max_new_tokens = max_new_tokens
        self.tokenizer_data = _enforcer_tokenizer_data(self.tokenizer)
        self.schema_parser = _schema_parser(output_schema())

    def _input_text(self, prompt: str, system: str | None = None) -> str:
        instructions = self.system_prompt if system is None else system
        messages = [{"role": "system", "content": instructions}, {"role": "user", "content": prompt}]
        if getattr(self.tokenizer, "chat_template", None):
            return str(
                self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            )
        template = self.plain_prompt if system is None else self.plain_prompt_with_system
        return template.format(system=instructions, prompt=prompt)

    def complete(
        self,
        prompt: str,
        *,
        schema: dict[str, Any] | None = None,
        system: str | None = None,
        schema_name: str | None = None,  # noqa: ARG002 - a local model's schema needs no name
    ) -> str:
        """The model's answer, its decoding constrained to `schema` (default: `output_schema()`)."""
        import torch
        from lmformatenforcer import TokenEnforcer
        from transformers import LogitsProcessorList

        inputs = self.tokenizer(self._input_text(prompt, system), return_tensors="pt")
        parser = self.schema_parser if schema is None else _schema_parser(schema)
        enforcer = TokenEnforcer(self.tokenizer_data, parser)
        eos = self.tokenizer.eos_token_id
        with torch.inference_mode():
            output = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                logits_processor=LogitsProcessorList([_SchemaLogitsProcessor(enforcer)]),
                eos_token_id=eos,
                pad_token_id=self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos,
            )
        generated = output[0, inputs["input_ids"].shape[1] :]
        return str(self.tokenizer.decode(generated, skip_special_tokens=True))


def _schema_parser(schema: dict[str, Any]) -> Any:
    from lmformatenforcer import CharacterLevelParserConfig, JsonSchemaParser

    # One whitespace at a time: a model that pads JSON with spaces would spend its budget on them.
    return JsonSchemaParser(schema, CharacterLevelParserConfig(max_consecutive_whitespaces=1))


class _SchemaLogitsProcessor:
    """Masks every token lm-format-enforcer does not allow after the sequence so far."""

    def __init__(self, enforcer: Any) -> None:
        self.enforcer = enforcer

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        mask = torch.full_like(scores, float("-inf"))
        for row in range(input_ids.shape[0]):
            allowed = self.enforcer.get_allowed_tokens(input_ids[row].tolist()).allowed_tokens
            allowed = [token for token in allowed if token < scores.shape[1]]
            mask[row, allowed] = 0.0
        return scores + mask


def _enforcer_tokenizer_data(tokenizer: Any) -> Any:
    """lm-format-enforcer's view of a tokenizer: each token's text, and whether it starts a word.

    The same construction as lmformatenforcer.integrations.transformers, whose import
    fails with transformers 5 (it imports the removed `transformers.tokenization_utils`).
    """
    from lmformatenforcer import TokenEnforcerTokenizerData

    zero = tokenizer.encode("0", add_special_tokens=False)[-1]
    special = set(tokenizer.all_special_ids)
    regular = []
    for token in range(len(tokenizer)):
        if token in special:
            continue
        after_zero = tokenizer.decode([zero, token])[1:]
        alone = tokenizer.decode([token])
        regular.append((token, after_zero, len(after_zero) > len(alone)))

    def decode(tokens: list[int]) -> str:
        return str(tokenizer.decode(tokens)).rstrip("\ufffd")

    return TokenEnforcerTokenizerData(regular, decode, tokenizer.eos_token_id, False, len(tokenizer))


# --- an OpenAI-compatible chat endpoint ----------------------------------------------------


class OpenAICompatibleBackend:
    """POST /chat/completions with the schema as `response_format` (json_schema)."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 60.0) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout = timeout

    def request_body(
        self,
        prompt: str,
        *,
        schema: dict[str, Any] | None = None,
        system: str | None = None,
        schema_name: str | None = None,
    ) -> dict[str, Any]:
        if schema is None:
            schema, schema_name = output_schema(), schema_name or "job_spec"
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT if system is None else system},
                {"role": "user", "content": prompt},
            ],
            "temperature": 0,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": schema_name or "answer", "schema": schema, "strict": True},
            },
        }

    def complete(
        self,
        prompt: str,
        *,
        schema: dict[str, Any] | None = None,
        system: str | None = None,
        schema_name: str | None = None,
    ) -> str:
        """The endpoint's answer to `prompt`, asked to follow `schema` (default: `output_schema()`)."""
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = self.request_body(prompt, schema=schema, system=system, schema_name=schema_name)
        request = urllib.request.Request(  # noqa: S310 - the operator configures this URL
            self.url, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                payload = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise BackendError(f"{self.url} answered HTTP {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise BackendError(f"{self.url} is unreachable: {getattr(exc, 'reason', exc)}") from exc
        except json.JSONDecodeError as exc:
            raise BackendError(f"{self.url} did not answer JSON") from exc
        try:
            return str(payload["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError) as exc:
            raise BackendError(f"{self.url} answered without choices[0].message.content") from exc
