"""The LLM proposer: a generative language model proposes changed specs from the trial history.

It sees the base spec, the fields it may change with their ranges, and the
trials so far as a compact table, and answers JSON of the shape

    {"proposals": [{"changes": {"learning_rate": 0.005, ...}, "reason": "one line"}]}

constrained by a JSON schema built from the search space. Never trusted: an
answer that is not JSON of that shape, changes a field outside the search space
(or one `hpo.fixed` pins), fails JobSpec validation or repeats a tried spec is
discarded with a warning (logged, and kept in `warnings`).

The model is reached through `JsonCompleter`, anything with
`complete_json(prompt, schema) -> str`: intent_backend.py wraps the intent parser's
generative backends (`intent_llm`) as one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import ValidationError

from jobspec import JobSpec, format_spec_errors, spec_diff, spec_errors

from .records import Proposal, TrialRecord
from .space import SearchSpace, apply_changes

SOURCE = "llm"
MAX_REASON_CHARS = 200
HISTORY_ROWS = 30
DEFAULT_REASON = "proposed by the language model"

logger = logging.getLogger(__name__)


class JsonCompleter(Protocol):
    """A generative backend that answers a prompt with JSON text conforming to `schema`."""

    def complete_json(self, prompt: str, schema: dict[str, Any]) -> str: ...


class LLMProposer:
    source = SOURCE

    def __init__(self, completer: JsonCompleter, space: SearchSpace) -> None:
        self.completer = completer
        self.space = space
        self.warnings: list[str] = []

    def propose(self, base: JobSpec, history: Sequence[TrialRecord], count: int) -> list[Proposal]:
        prompt = build_prompt(base, self.space, history, count)
        try:
            answer = self.completer.complete_json(prompt, answer_schema(self.space, count))
        except (OSError, RuntimeError, ValueError) as exc:
            self._warn(f"the language model did not answer: {exc}")
            return []
        return self.parse(answer, base, history, count)

    def parse(self, answer: str, base: JobSpec, history: Sequence[TrialRecord], count: int) -> list[Proposal]:
        """The valid proposals in `answer`; everything else is discarded with a warning."""
        try:
            data = json.loads(answer)
        except json.JSONDecodeError as exc:
            self._warn(f"discarded the answer: not JSON ({exc.msg})")
            return []
        items = data.get("proposals") if isinstance(data, dict) else None
        if not isinstance(items, list):
            self._warn("discarded the answer: no 'proposals' list")
            return []
        tried = [record.spec for record in history] + [base]
        proposals: list[Proposal] = []
        for index, item in enumerate(items[:count]):
            proposal = self._proposal(index, item, base, tried)
            if proposal is not None:
                proposals.append(proposal)
                tried.append(proposal.spec)
        return proposals

    def _proposal(self, index: int, item: Any, base: JobSpec, tried: list[JobSpec]) -> Proposal | None:
        changes = item.get("changes") if isinstance(item, dict) else None
        if not isinstance(changes, dict) or not changes:
            self._warn(f"discarded proposal {index}: no 'changes' object")
            return None
        outside = sorted(set(changes) - set(self.space.fields))
        if outside:
            self._warn(
                f"discarded proposal {index}: it changes {', '.join(outside)}, outside the search space"
            )
            return None
        try:
            spec = apply_changes(base, changes)
        except ValidationError as exc:
            self._warn(f"discarded proposal {index}: {format_spec_errors(spec_errors(exc))}")
            return None
        except (TypeError, AttributeError) as exc:
            self._warn(f"discarded proposal {index}: malformed changes ({exc})")
            return None
        if any(not _differs(spec, other) for other in tried):
            self._warn(f"discarded proposal {index}: that spec was already tried")
            return None
        reason = item.get("reason")
        reason = (
            reason.strip()[:MAX_REASON_CHARS]
            if isinstance(reason, str) and reason.strip()
            else DEFAULT_REASON
        )
        return Proposal(spec=spec, reason=reason, source=SOURCE)

    def _warn(self, message: str) -> None:
        logger.warning("LLM proposer: %s", message)
        self.warnings.append(message)


def _differs(spec: JobSpec, other: JobSpec) -> bool:
    ignored = {"validation_fraction", "hpo.enabled", "hpo.trials", "hpo.objective", "hpo.fixed"}
    return any(name not in ignored for name in spec_diff(spec, other))


def answer_schema(space: SearchSpace, count: int) -> dict[str, Any]:
    """The JSON schema of an answer: each searchable field with its type and range."""
    return {
        "type": "object",
        "properties": {
            "proposals": {
                "type": "array",
                "minItems": 1,
                "maxItems": count,
                "items": {
                    "type": "object",
                    "properties": {
                        "changes": {
                            "type": "object",
                            "properties": field_schemas(space),
                            "additionalProperties": False,
                        },
                        "reason": {"type": "string", "maxLength": MAX_REASON_CHARS},
                    },
                    "required": ["changes", "reason"],
                },
            }
        },
        "required": ["proposals"],
    }


def field_schemas(space: SearchSpace) -> dict[str, dict[str, Any]]:
    schemas: dict[str, dict[str, Any]] = {}
    for dim in space.dimensions:
        if dim.role == "depth":
            schemas[dim.field] = {"type": "array", "minItems": 1, "maxItems": int(dim.high)}
        elif dim.role == "width":
            items = schemas[dim.field].setdefault("items", {"type": "integer", "enum": []})
            items["enum"] = sorted(set(items["enum"]) | set(dim.choices))
        elif dim.kind == "categorical":
            previous = schemas.get(dim.field, {}).get("enum", [])
            schemas[dim.field] = {"enum": list(dict.fromkeys([*previous, *dim.choices]))}
        else:
            kind = "integer" if dim.kind == "int" else "number"
            low, high = dim.low, dim.high
            if dim.field in schemas:  # a field sampled per variant (learning_rate per optimizer)
                low = min(low, schemas[dim.field]["minimum"])
                high = max(high, schemas[dim.field]["maximum"])
            schemas[dim.field] = {"type": kind, "minimum": low, "maximum": high}
    return schemas


def build_prompt(base: JobSpec, space: SearchSpace, history: Sequence[TrialRecord], count: int) -> str:
    objective = base.hpo.objective
    goal = "higher validation accuracy" if objective == "accuracy" else "lower validation loss"
    lines = [
        "You tune a federated-learning job. Propose "
        f"{count} changed job spec(s) likely to reach a {goal} than every trial so far.",
        "Base spec: " + json.dumps(base.model_dump(mode="json", exclude={"hpo"}), separators=(",", ":")),
        "Fields you may change (nothing else; learning_rate ranges differ by optimizer):",
        *(f"- {text}" for text in space.describe()),
    ]
    if base.hpo.fixed:
        lines.append("Pinned by the user, never change: " + ", ".join(base.hpo.fixed))
    lines.append(history_table(base, history))
    lines.append(
        'Answer JSON only: {"proposals": [{"changes": {"<field>": <value>, ...}, "reason": "<one line>"}]}'
    )
    return "\n".join(lines)


def history_table(base: JobSpec, history: Sequence[TrialRecord]) -> str:
    """Trials as a compact table: number, status, rounds run, final validation figures, changes vs base."""
    if not history:
        return "No trials yet."
    rows = ["Trials (val = validation split):", "# | status | rounds | val_acc | val_loss | changes vs base"]
    for record in list(history)[-HISTORY_ROWS:]:
        last = record.rounds[-1] if record.rounds else None
        changes = {
            name: new
            for name, (_, new) in spec_diff(base, record.spec).items()
            if name != "validation_fraction" and not name.startswith("hpo.")
        }
        rows.append(
            f"{record.number} | {record.status} | {len(record.rounds)} | "
            f"{_figure(last.val_accuracy if last else None)} | {_figure(last.val_loss if last else None)} | "
            + (", ".join(f"{k}={json.dumps(v)}" for k, v in changes.items()) or "(base)")
        )
    return "\n".join(rows)


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def configured_llm_proposer(space: SearchSpace) -> LLMProposer | None:
    """An LLM proposer on the intent parser's configured generative backend, or None when none is."""
    from . import intent_backend

    completer = intent_backend.configured_completer()
    return None if completer is None else LLMProposer(completer, space)
