"""Command-line entry points: `python -m orchestrator hpo SPEC.json` and
`python -m orchestrator.hpo suggest SPEC.json`. Both run in this process (no
database, Redis or Celery) and print one JSON object per line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from jobspec import JobSpec, format_spec_errors, spec_errors
from orchestrator.fl.config import configure_from_environment
from orchestrator.fl.csv_models import CsvModelMismatch, csv_model_resolve
from orchestrator.fl.data import DatasetUnavailable
from orchestrator.fl.partition import PartitionError
from orchestrator.fl.simulation import InProcessJob

from .diagnostics import suggestions
from .records import RoundPoint, TrialRecord


def read_spec(path: str) -> JobSpec:
    """The spec in a file (or standard input, "-"), its CSV's model checked against the file here."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    raw = json.loads(text)
    return JobSpec.model_validate(csv_model_resolve(raw) if isinstance(raw, dict) else raw)


def spec_load(path: str) -> JobSpec | None:
    """`read_spec`, or None after saying on stderr what is wrong with the file."""
    try:
        return read_spec(path)
    except ValidationError as exc:
        print(f"invalid job spec: {format_spec_errors(spec_errors(exc))}", file=sys.stderr)
    except CsvModelMismatch as exc:
        print(f"invalid job spec: model: {exc}", file=sys.stderr)
    except (OSError, json.JSONDecodeError) as exc:
        print(f"cannot read job spec {path}: {exc}", file=sys.stderr)
    return None


def trial_line(record: TrialRecord) -> dict[str, Any]:
    """A trial's figures are on its validation split: trials are never compared on the test set."""
    last = record.rounds[-1] if record.rounds else None
    return {
        "trial": record.number,
        "accuracy": last.val_accuracy if last else None,
        "loss": last.val_loss if last else None,
        "pruned": record.status == "pruned",
        "status": record.status,
        "split": "validation",
        "rounds_run": len(record.rounds),
        "source": record.source,
        "reason": record.reason,
        **({"error": record.error} if record.error else {}),
        "spec": record.spec.model_dump(mode="json"),
    }


def command_hpo(args: argparse.Namespace) -> int:
    spec = spec_load(args.spec)
    if spec is None:
        return 2
    trials = args.trials if args.trials is not None else spec.hpo.trials
    if trials < 1:
        print("no trials to run: set hpo.trials in the spec or pass --trials", file=sys.stderr)
        return 2
    # Optuna loads only when a study runs, so `python -m orchestrator run` starts no slower.
    import optuna

    from .llm import configured_llm_proposer
    from .space import search_space
    from .study import InProcessStudy, NoCompletedTrial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    llm = None if args.no_llm else configured_llm_proposer(search_space(spec))
    study = InProcessStudy(spec, trials=trials, llm=llm)
    try:
        result = study.run(on_trial=lambda record: print(json.dumps(trial_line(record)), flush=True))
    except (DatasetUnavailable, PartitionError, NoCompletedTrial) as exc:
        print(f"cannot run study: {exc}", file=sys.stderr)
        return 1
    final = {
        "final": True,
        "accuracy": result.accuracy,
        "loss": result.loss,
        "split": "test",
        "trials": len(result.trials),
        "best_trial": result.best.number,
        "best_validation_accuracy": result.best.rounds[-1].val_accuracy,
        "wall_s": result.wall_s,
        "spec": result.spec.model_dump(mode="json"),
    }
    print(json.dumps(final), flush=True)
    return 0


def command_suggest(args: argparse.Namespace) -> int:
    """Run a job, then print the diagnostics proposer's suggestions for it.

    The start of `python -m orchestrator.hpo suggest`: the engine is configured here."""
    try:
        configure_from_environment()
    except ValueError as exc:
        print(f"invalid configuration: {exc}", file=sys.stderr)
        return 2
    spec = spec_load(args.spec)
    if spec is None:
        return 2
    started = time.perf_counter()
    rounds: list[RoundPoint] = []
    try:
        for summary in InProcessJob(spec):
            rounds.append(RoundPoint.from_summary(summary))
    except (DatasetUnavailable, PartitionError) as exc:
        print(f"cannot run job: {exc}", file=sys.stderr)
        return 1
    last = rounds[-1]
    job = {
        "final": True,
        "accuracy": last.accuracy,
        "loss": last.loss,
        "wall_s": time.perf_counter() - started,
    }
    print(json.dumps(job), flush=True)
    for number, proposal in enumerate(suggestions(spec, rounds)):
        line = {
            "suggestion": number,
            "reason": proposal.reason,
            "diff": {name: list(values) for name, values in proposal.diff(spec).items()},
            "spec": proposal.spec.model_dump(mode="json"),
        }
        print(json.dumps(line), flush=True)
    return 0


def add_hpo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="path to the starting JobSpec JSON file, or - for standard input")
    parser.add_argument(
        "--trials", type=int, default=None, help="trials to run (default: the spec's hpo.trials)"
    )
    parser.add_argument(
        "--no-llm", action="store_true", help="do not ask a configured generative backend for proposals"
    )
