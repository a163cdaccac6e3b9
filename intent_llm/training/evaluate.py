"""Accuracy of a parser on a set of prompts with the fields they must produce.

Per-field accuracy counts, over every field a prompt sets, how often the parsed spec
has exactly that value; exact match counts prompts whose every set field is right.
A refused job prompt gets every field wrong. Non-job prompts must be refused.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobspec import flatten

if TYPE_CHECKING:
    from .generator import Example

HANDWRITTEN = Path(__file__).parent.parent / "data" / "handwritten.jsonl"
# Written before the first model was evaluated and never used to tune it: an honest estimate.
BLIND = Path(__file__).parent.parent / "data" / "handwritten_blind.jsonl"
# Written by another author who never saw the training phrasings nor the parser's answers;
# only fields of the contract are expected (the parser leaves extension fields at their defaults).
PEOPLE = Path(__file__).parent.parent / "data" / "people_blind.jsonl"
# A second such set by an author who saw only jobspec.md. Its failures were read while the current
# model's training phrasings were extended, so it is no longer blind (MODEL_CARD.md).
PEOPLE_2 = Path(__file__).parent.parent / "data" / "people_blind_2.jsonl"
# A third by such an author; its failures were read to fix the normaliser and decoder and to add
# harder refusals, so it is no longer blind either.
PEOPLE_3 = Path(__file__).parent.parent / "data" / "people_blind_3.jsonl"
# A fourth by an author who saw only jobspec.md, written while the current model trained; never tuned on.
PEOPLE_4 = Path(__file__).parent.parent / "data" / "people_blind_4.jsonl"
WRITTEN_SETS = {
    "handwritten": HANDWRITTEN,
    "handwritten_blind": BLIND,
    "people_blind": PEOPLE,
    "people_blind_2": PEOPLE_2,
    "people_blind_3": PEOPLE_3,
    "people_blind_4": PEOPLE_4,
}


@dataclass
class Case:
    prompt: str
    expect: dict[str, Any] | None  # None: the prompt must be refused


def to_cases(examples: Iterable[Example]) -> list[Case]:
    """Generated examples as cases: a job's expected fields, or a refusal."""
    return [Case(example.prompt, example.expect if example.job else None) for example in examples]


def load_cases(path: Path = HANDWRITTEN) -> list[Case]:
    cases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            cases.append(Case(row["prompt"], None if row.get("error") else row["expect"]))
    return cases


def same_value(expected: Any, actual: Any) -> bool:
    if isinstance(expected, list) and isinstance(actual, list):
        return sorted(map(str, expected)) == sorted(map(str, actual))
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return math.isclose(float(expected), float(actual), rel_tol=1e-6, abs_tol=1e-12)
    return expected == actual


@dataclass
class Report:
    name: str
    jobs: int = 0
    exact: int = 0
    refusals_expected: int = 0
    refused_correctly: int = 0
    jobs_refused: int = 0
    field_total: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    field_right: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    mentioned_extra: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def field_accuracy(self) -> float:
        total = sum(self.field_total.values())
        return sum(self.field_right.values()) / total if total else 1.0

    @property
    def exact_match(self) -> float:
        return self.exact / self.jobs if self.jobs else 1.0

    @property
    def refusal_rate(self) -> float:
        return self.refused_correctly / self.refusals_expected if self.refusals_expected else 1.0

    def summary(self) -> dict[str, Any]:
        return {
            "set": self.name,
            "job_prompts": self.jobs,
            "field_accuracy": round(self.field_accuracy, 4),
            "exact_match": round(self.exact_match, 4),
            "non_job_prompts": self.refusals_expected,
            "non_job_refused": round(self.refusal_rate, 4),
            "job_prompts_refused": self.jobs_refused,
            "per_field": {
                name: round(self.field_right[name] / total, 4)
                for name, total in sorted(self.field_total.items())
            },
        }


def evaluate(name: str, cases: Iterable[Case], parse: Callable[[str], dict[str, Any]]) -> Report:
    report = Report(name)
    for case in cases:
        answer = parse(case.prompt)
        if case.expect is None:
            report.refusals_expected += 1
            if "error" in answer:
                report.refused_correctly += 1
            else:
                report.failures.append(
                    {"prompt": case.prompt, "wanted": "refusal", "got": answer.get("mentioned")}
                )
            continue
        report.jobs += 1
        if "error" in answer:
            report.jobs_refused += 1
        flat = (
            {}
            if "error" in answer
            else flatten({k: v for k, v in answer.items() if k not in ("mentioned", "warnings")})
        )
        wrong = {}
        for name_, expected in case.expect.items():
            report.field_total[name_] += 1
            actual = flat.get(name_, "<refused>" if "error" in answer else None)
            if same_value(expected, actual):
                report.field_right[name_] += 1
            else:
                wrong[name_] = {"want": expected, "got": actual}
        if not wrong:
            report.exact += 1
        else:
            report.failures.append(
                {"prompt": case.prompt, "wrong": wrong, "warnings": answer.get("warnings")}
            )
        if "mentioned" in answer:
            report.mentioned_extra += len(set(answer["mentioned"]) - set(case.expect))
    return report


def score_all(parse: Callable[[str], dict[str, Any]], seed: int, heldout_examples: int) -> list[Report]:
    """The held-out family (generated from `seed`) and every written set, in that order."""
    from .generator import generate

    sets = [("heldout", to_cases(generate(heldout_examples, seed, "heldout")))]
    sets += [(name, load_cases(path)) for name, path in WRITTEN_SETS.items()]
    return [evaluate(name, cases, parse) for name, cases in sets]


def scores_json(reports: list[Report]) -> str:
    """The reports' summaries as scores.json holds them."""
    return json.dumps({report.name: report.summary() for report in reports}, indent=2) + "\n"


def save_scores(reports: list[Report], path: Path) -> None:
    path.write_text(scores_json(reports), encoding="utf-8")
