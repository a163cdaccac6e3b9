"""The parser: prompt -> normalised text -> model -> validated spec.

`IntentParser.parse(prompt)` returns a `ParseResult`; `.to_json()` is the CLI/REST
shape of jobspec.md. A prompt that is itself a JSON job spec is validated directly.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import numpy as np

from jobspec import flatten, spec_field_names

from .decode import EMPTY, ParseResult, PathResolver, Predictions, decode, validate_values
from .featurize import Prepared, prepare
from .fields import ENUM_HEADS, code_vocabulary
from .normalize import SpellingCorrector

MAX_PROMPT_CHARS = 4000
TOO_LONG = f"The prompt is longer than {MAX_PROMPT_CHARS} characters; describe the job more briefly."


class Predictor(Protocol):
    """A model: `predict` gives each head's probabilities, over the vocabulary the model
    recorded; a predictor with a `labels` attribute says which (else the code's, `head_labels`)."""

    def predict(self, prepared: Prepared) -> dict[str, np.ndarray]: ...


class IntentParser:
    """Normalises a prompt, lets the model read it and decodes the answer."""

    def __init__(self, corrector: SpellingCorrector | None, predictor: Predictor) -> None:
        self.corrector = corrector
        self.predictor = predictor

    def predictions(self, prepared: Prepared) -> Predictions:
        output = self.predictor.predict(prepared)
        return Predictions(
            intent=output["intent"],
            heads={head: output[head] for head in ENUM_HEADS},
            spans=prepared.spans,
            span_probs=output["spans"],
            fixed=output["fixed"],
            labels=getattr(self.predictor, "labels", None) or code_vocabulary(),
        )

    def parse(self, prompt: str, resolve_path: PathResolver | None = None) -> ParseResult:
        """The spec `prompt` asks for (see decode.decode for `resolve_path`)."""
        if not prompt or not prompt.strip():
            return ParseResult(error=EMPTY)
        if len(prompt) > MAX_PROMPT_CHARS:
            return ParseResult(error=TOO_LONG)
        pasted = _pasted_spec(prompt, resolve_path)
        if pasted is not None:
            return pasted
        prepared = prepare(prompt, self.corrector)
        return decode(prepared.normalized, self.predictions(prepared), resolve_path)

    def parse_json(self, prompt: str) -> dict[str, Any]:
        return self.parse(prompt).to_json()


def _pasted_spec(prompt: str, resolve_path: PathResolver | None) -> ParseResult | None:
    """A JSON job spec pasted as the prompt is read as it is, not guessed at."""
    text = prompt.strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not data:
        return None
    values = flatten(data)
    if not set(values) <= spec_field_names():
        return None
    return validate_values(values, resolve_path)
