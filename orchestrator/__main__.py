"""`python -m orchestrator run SPEC.json`: run a job in-process, one JSON line per round.
`python -m orchestrator hpo SPEC.json`: search for a better spec in-process, one JSON line per trial."""

from __future__ import annotations

import argparse
import json
import sys
import time

from .fl.config import configure_from_environment
from .fl.data import DatasetUnavailable
from .fl.partition import PartitionError
from .fl.simulation import InProcessJob
from .fl.text import ModelUnavailable
from .hpo.cli import add_hpo_arguments, command_hpo, spec_load


def command_run(args: argparse.Namespace) -> int:
    spec = spec_load(args.spec)
    if spec is None:
        return 2
    started = time.perf_counter()
    totals = {
        "bytes_up_total": 0,
        "bytes_down_total": 0,
        "client_cpu_s_total": 0.0,
        "sim_latency_s_total": 0.0,
    }
    accuracy = loss = float("nan")
    try:
        for summary in InProcessJob(spec):
            print(json.dumps(summary.as_line()), flush=True)
            accuracy, loss = summary.accuracy, summary.loss
            totals["bytes_up_total"] += summary.bytes_up
            totals["bytes_down_total"] += summary.bytes_down
            totals["client_cpu_s_total"] += summary.client_cpu_s
            totals["sim_latency_s_total"] += summary.metrics.get("sim_latency_s", 0.0)
    except (DatasetUnavailable, ModelUnavailable, PartitionError) as exc:
        print(f"cannot run job: {exc}", file=sys.stderr)
        return 1
    final = {"final": True, "accuracy": accuracy, "loss": loss, "rounds": spec.rounds, **totals}
    final["wall_s"] = time.perf_counter() - started
    print(json.dumps(final), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a job in this process and print per-round metrics")
    run.add_argument("spec", help="path to a JobSpec JSON file, or - for standard input")
    run.set_defaults(handler=command_run)
    hpo = commands.add_parser("hpo", help="search for a better spec in this process: one JSON line per trial")
    add_hpo_arguments(hpo)
    hpo.set_defaults(handler=command_hpo)
    args = parser.parse_args(argv)
    try:
        configure_from_environment()
    except ValueError as exc:
        parser.error(str(exc))
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
