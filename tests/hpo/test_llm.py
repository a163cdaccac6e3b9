"""The LLM proposer: answers that are not valid specs inside the search space are discarded with a warning."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from jobspec import JobSpec
from orchestrator.hpo.llm import LLMProposer, answer_schema
from orchestrator.hpo.records import RoundPoint, TrialRecord
from orchestrator.hpo.space import search_space

BASE = JobSpec.model_validate(
    {
        "dataset": "digits",
        "model": "mlp",
        "rounds": 5,
        "learning_rate": 0.0005,
        "partition": {"scheme": "dirichlet", "alpha": 0.1},
        "hpo": {"enabled": True, "trials": 4, "fixed": ["rounds"]},
    }
)


class ScriptedCompleter:
    """Answers with fixed text and remembers what it was asked."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.prompts: list[str] = []
        self.schemas: list[dict[str, Any]] = []

    def complete_json(self, prompt: str, schema: dict[str, Any]) -> str:
        self.prompts.append(prompt)
        self.schemas.append(schema)
        return self.answer


def proposals_for(answer: Any, history: list[TrialRecord] | None = None) -> tuple[LLMProposer, list]:
    text = answer if isinstance(answer, str) else json.dumps(answer)
    proposer = LLMProposer(ScriptedCompleter(text), search_space(BASE))
    return proposer, proposer.propose(BASE, history or [], 2)


def one(changes: dict[str, Any], reason: str = "try it") -> dict[str, Any]:
    return {"proposals": [{"changes": changes, "reason": reason}]}


def test_a_valid_answer_becomes_a_validated_spec() -> None:
    proposer, proposals = proposals_for(
        {
            "proposals": [
                {"changes": {"learning_rate": 0.005, "local_epochs": 2}, "reason": "loss barely moves"},
                {"changes": {"algorithm": "fedprox", "proximal_mu": 0.1}, "reason": "label skew"},
            ]
        }
    )
    assert not proposer.warnings
    assert [p.diff(BASE) for p in proposals] == [
        {"learning_rate": (0.0005, 0.005), "local_epochs": (1, 2)},
        {"algorithm": ("fedavg", "fedprox"), "proximal_mu": (None, 0.1)},
    ]
    assert proposals[0].reason == "loss barely moves" and proposals[0].source == "llm"


@pytest.mark.parametrize(
    ("answer", "warning"),
    [
        ("this is not json", "not JSON"),
        ({"ideas": []}, "no 'proposals' list"),
        ({"proposals": [{"reason": "no changes"}]}, "no 'changes' object"),
        (one({"rounds": 50}), "rounds, outside the search space"),
        (one({"dataset": "mnist"}), "dataset, outside the search space"),
        (one({"learning_rate": -1.0}), "learning_rate"),
        (one({"clients_per_round": 50}), "clients_per_round: must be <= num_clients"),
        (one({"optimizer": "rmsprop"}), "optimizer"),
        (one({"architecture.hidden": [2048]}), "architecture.hidden"),
        (one({"local_epochs": 1}), "already tried"),
    ],
)
def test_invalid_answers_are_discarded_with_a_warning(
    answer: Any, warning: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="orchestrator.hpo.llm"):
        proposer, proposals = proposals_for(answer)
    assert proposals == []
    assert len(proposer.warnings) == 1 and warning in proposer.warnings[0]
    assert warning in caplog.text


def test_valid_proposals_survive_beside_invalid_ones() -> None:
    proposer, proposals = proposals_for(
        {
            "proposals": [
                {"changes": {"batch_size": 0}, "reason": "bad"},
                {"changes": {"batch_size": 64}, "reason": "good"},
            ]
        }
    )
    assert [p.reason for p in proposals] == ["good"]
    assert len(proposer.warnings) == 1 and "batch_size" in proposer.warnings[0]


def test_a_failing_backend_gives_no_proposals() -> None:
    class Broken:
        def complete_json(self, prompt: str, schema: dict[str, Any]) -> str:
            raise RuntimeError("endpoint refused the connection")

    proposer = LLMProposer(Broken(), search_space(BASE))
    assert proposer.propose(BASE, [], 1) == []
    assert "endpoint refused" in proposer.warnings[0]


def test_the_prompt_carries_the_trial_history_and_the_schema_the_space() -> None:
    tried = BASE.model_copy(update={"learning_rate": 0.003})
    history = [
        TrialRecord(0, BASE, "complete", 0.37, [RoundPoint(1, 0.3, 2.1, val_accuracy=0.37, val_loss=2.13)]),
        TrialRecord(1, tried, "pruned", 0.2, [RoundPoint(1, 0.2, 2.2, val_accuracy=0.2, val_loss=2.2)]),
    ]
    completer = ScriptedCompleter(json.dumps(one({"learning_rate": 0.003})))
    proposer = LLMProposer(completer, search_space(BASE))
    assert proposer.propose(BASE, history, 1) == []  # trial 1 already ran that spec
    prompt = completer.prompts[0]
    assert "0 | complete | 1 | 0.370 | 2.130 | (base)" in prompt
    assert "1 | pruned | 1 | 0.200 | 2.200 | learning_rate=0.003" in prompt
    assert "Pinned by the user, never change: rounds" in prompt
    changes = completer.schemas[0]["properties"]["proposals"]["items"]["properties"]["changes"]
    assert "rounds" not in changes["properties"] and changes["additionalProperties"] is False
    assert changes["properties"]["optimizer"] == {"enum": ["sgd", "adam", "adamw"]}
    assert answer_schema(search_space(BASE), 3)["properties"]["proposals"]["maxItems"] == 3
