"""The parser: prompt -> normalised text -> model ensemble -> validated spec.

`IntentParser.parse(prompt)` returns a `ParseResult`; `.to_json()` is the CLI/REST
shape of jobspec.md. A prompt that is itself a JSON job spec is validated directly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from orchestrator.fl.spec import flatten, spec_field_names

from .decode import EMPTY, ParseResult, PathResolver, Predictions, decode, validate_values
from .featurize import Prepared, prepare
from .fields import ENUM_HEADS
from .normalize import SpellingCorrector

MAX_PROMPT_CHARS = 4000
TOO_LONG = f"The prompt is longer than {MAX_PROMPT_CHARS} characters; describe the job more briefly."


class Predictor(Protocol):
    def predict(self, prepared: Prepared) -> dict[str, np.ndarray]: ...


class IntentParser:
    """Averages the probabilities of its predictors (weights sum to one) and decodes them."""

    def __init__(
        self,
        corrector: SpellingCorrector | None,
        predictors: Sequence[Predictor],
        weights: Sequence[float] | None = None,
    ) -> None:
        self.corrector = corrector
        self.predictors = list(predictors)
        self.weights = (
            list(weights) if weights is not None else [1 / len(self.predictors)] * len(self.predictors)
        )

    def predictions(self, prepared: Prepared) -> Predictions:
        outputs = [predictor.predict(prepared) for predictor in self.predictors]

        def mix(key: str) -> np.ndarray:
            """Weighted average over the predictors that answer `key`."""
            pairs = [
                (weight, output[key])
                for weight, output in zip(self.weights, outputs, strict=True)
                if key in output
            ]
            total = sum(weight for weight, _ in pairs)
            return sum(weight / total * probs for weight, probs in pairs)  # type: ignore[return-value]

        return Predictions(
            intent=mix("intent"),
            heads={head: mix(head) for head in ENUM_HEADS},
            spans=prepared.spans,
            span_probs=mix("spans"),
            fixed=mix("fixed"),
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
