"""In-process studies: trials run on a validation split, poor trials stop early, the best spec reproduces."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jobspec import JobSpec
from orchestrator.__main__ import main
from orchestrator.fl.engine import runtime_for
from orchestrator.fl.simulation import InProcessJob
from orchestrator.hpo.records import Proposal
from orchestrator.hpo.space import apply_changes
from orchestrator.hpo.study import InProcessStudy, run_trial


def small(**overrides: Any) -> JobSpec:
    data: dict[str, Any] = {
        "dataset": "digits",
        "model": "mlp",
        "num_clients": 3,
        "rounds": 4,
        "optimizer": "adam",
        "learning_rate": 0.01,
    }
    data.update(overrides)
    return JobSpec.model_validate(data)


def test_validation_rows_are_held_out_stratified_and_reported() -> None:
    plain = runtime_for(small())
    held = runtime_for(small(validation_fraction=0.1))
    assert len(plain.validation_rows) == 0
    trained = np.concatenate(held.client_indices)
    assert not set(trained) & set(held.validation_rows)
    assert len(trained) + len(held.validation_rows) == len(held.dataset.y_train)
    labels = held.dataset.y_train.numpy()
    shares = np.bincount(labels[held.validation_rows], minlength=10) / np.bincount(labels, minlength=10)
    assert np.allclose(shares, 0.1, atol=0.02)
    summary = next(iter(InProcessJob(small(validation_fraction=0.1, rounds=1))))
    assert 0.0 <= summary.metrics["val_accuracy"] <= 1.0 and summary.metrics["val_loss"] > 0


def test_a_job_without_validation_split_partitions_as_before() -> None:
    from orchestrator.fl.data import load_dataset
    from orchestrator.fl.partition import partition_indices

    spec = small(partition={"scheme": "dirichlet", "alpha": 0.3})
    labels = load_dataset("digits", seed=0).y_train.numpy()
    expected = partition_indices(labels, num_clients=3, partition=spec.partition, seed=0)
    for got, want in zip(runtime_for(spec).client_indices, expected, strict=True):
        assert np.array_equal(got, want)


def test_a_trial_stops_when_the_pruner_says_so() -> None:
    spec = small(validation_fraction=0.1)
    reported: list[tuple[int, float]] = []

    def report(server_round: int, value: float) -> bool:
        reported.append((server_round, value))
        return server_round == 2

    rounds, pruned = run_trial(spec, objective="accuracy", report=report)
    assert pruned and len(rounds) == 2 < spec.rounds
    assert [r for r, _ in reported] == [1, 2]
    assert reported[-1][1] == rounds[-1].val_accuracy


@pytest.mark.slow
def test_poor_trials_are_pruned_after_the_warm_up() -> None:
    base = small(hpo={"enabled": True, "trials": 6, "fixed": ["rounds"]})
    study = InProcessStudy(base, trials=6)
    good: list[dict[str, Any]] = [{"learning_rate": 0.02}, {"batch_size": 16}]
    hopeless: list[dict[str, Any]] = [
        {"optimizer": "sgd", "learning_rate": 0.001},
        {"optimizer": "sgd", "learning_rate": 0.0011},
    ]
    for changes in good + hopeless:
        assert study.optuna.enqueue(Proposal(apply_changes(base, changes), "test", "test"))
    result = study.run()
    statuses = [(record.status, len(record.rounds)) for record in result.trials[:5]]
    assert statuses[:3] == [("complete", 4)] * 3
    assert statuses[3:] == [("pruned", 2), ("pruned", 2)]
    assert result.best.number in (0, 1, 2)


def run_cli(argv: list[str]) -> list[dict[str, Any]]:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(argv) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.slow
def test_the_cli_prints_trials_then_a_best_spec_that_run_reproduces(tmp_path: Path) -> None:
    spec = small(rounds=2, learning_rate=0.0005, hpo={"enabled": True, "trials": 3, "fixed": ["rounds"]})
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(spec.model_dump_json())
    lines = run_cli(["hpo", str(spec_path), "--no-llm"])
    trials, final = lines[:-1], lines[-1]
    assert [line["trial"] for line in trials] == [0, 1, 2]
    for line in trials:
        assert {"accuracy", "loss", "pruned", "spec"} <= set(line)
        assert line["spec"]["validation_fraction"] == 0.1 and line["spec"]["rounds"] == 2
    assert trials[0]["reason"] == "the starting spec"
    assert final["final"] is True and final["trials"] == 3
    assert final["spec"]["validation_fraction"] == 0.0 and not final["spec"]["hpo"]["enabled"]
    best = trials[final["best_trial"]]
    assert best["accuracy"] == max(line["accuracy"] for line in trials if not line["pruned"])
    best_path = tmp_path / "best.json"
    best_path.write_text(json.dumps(final["spec"]))
    rerun = run_cli(["run", str(best_path)])[-1]
    assert (rerun["accuracy"], rerun["loss"]) == (final["accuracy"], final["loss"])
