"""Command line: parse prompts, train the model, evaluate it, measure its speed.

python -m intent_llm parse "PROMPT"          one JSON object; exit 2 if refused
python -m intent_llm parse --jsonl FILE      one JSON object per line, exit 0
python -m intent_llm train [--seed 0]        reproduce intent_llm/model/ and print its scores
python -m intent_llm eval                    per-field accuracy, exact match, refusals
python -m intent_llm bench                   load time, latency, peak memory

The command line is the configuring owner of its process: it reads INTENT_THREADS (torch
threads for parse, eval and bench; train has --threads) and the backend settings
(INTENT_BACKEND, ...) once, strictly, and a value that does not parse stops it, naming the
variable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .configuration import ConfigurationError, intent_threads
from .memory import return_freed_tensors_to_the_os

EXIT_REFUSED = 2


def _print(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _prompt_of(line: str, number: int) -> tuple[str | None, str | None]:
    """(prompt, None) or (None, why the line is not a prompt)."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None, f'line {number} is not JSON: give a JSON string or an object with a "prompt" key'
    if isinstance(value, str):
        return value, None
    if isinstance(value, dict) and isinstance(value.get("prompt"), str):
        return value["prompt"], None
    return None, f'line {number} is neither a JSON string nor an object with a "prompt" string'


def cmd_parse(args: argparse.Namespace) -> int:
    from .configuration import BackendSettings
    from .loading import load_configured_parser

    if args.jsonl is None and args.prompt is None:
        print("give a PROMPT or --jsonl FILE", file=sys.stderr)
        return EXIT_REFUSED
    settings = BackendSettings.from_environment(os.environ)
    if args.jsonl is not None:
        try:
            source = sys.stdin if args.jsonl == "-" else open(args.jsonl, encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            print(f"cannot read {args.jsonl}: {exc.strerror}", file=sys.stderr)
            return EXIT_REFUSED
        parser = load_configured_parser(settings)
        with source:
            for number, line in enumerate(source, start=1):
                if not line.strip():
                    continue
                prompt, problem = _prompt_of(line, number)
                _print({"error": problem} if prompt is None else parser.parse(prompt).to_json())
        return 0
    parser = load_configured_parser(settings)
    answer = parser.parse(args.prompt).to_json()
    _print(answer)
    return EXIT_REFUSED if "error" in answer else 0


def cmd_train(args: argparse.Namespace) -> int:
    from .training.train import MODEL_DIR, TrainConfig, train

    config = TrainConfig(seed=args.seed, members=args.members, threads=args.threads)
    if args.examples:
        config.train_examples = args.examples
    if args.epochs:
        config.epochs = args.epochs
    for summary in train(config, Path(args.out) if args.out else MODEL_DIR):
        _print_report(summary)
    return 0


def _print_report(summary: dict[str, Any]) -> None:
    print(
        f"{summary['set']}: per-field accuracy {summary['field_accuracy']:.4f}, exact match "
        f"{summary['exact_match']:.4f} on {summary['job_prompts']} job prompts; non-job prompts refused "
        f"{summary['non_job_refused']:.4f} of {summary['non_job_prompts']}; job prompts refused "
        f"{summary['job_prompts_refused']}"
    )
    for name, accuracy in summary["per_field"].items():
        print(f"    {name:<30} {accuracy:.4f}")


def cmd_eval(args: argparse.Namespace) -> int:
    from .loading import MODEL_DIR, load_parser
    from .training.evaluate import evaluate, load_cases, save_scores, score_all, scores_json

    directory = Path(args.model) if args.model else MODEL_DIR
    parser = load_parser(directory, args.members)
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    seed = config["training"]["seed"] if args.seed is None else args.seed
    reports = score_all(parser.parse_json, seed, args.heldout)
    if args.save:
        save_scores(reports, directory / "scores.json")
    if args.cases:
        reports.append(evaluate(Path(args.cases).stem, load_cases(Path(args.cases)), parser.parse_json))
    if args.json:
        sys.stdout.write(scores_json(reports))
        return 0
    for report in reports:
        _print_report(report.summary())
        if args.failures:
            for failure in report.failures:
                print("    FAIL " + json.dumps(failure, ensure_ascii=False))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .training.bench import run_benchmark

    run_benchmark(args.prompts)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m intent_llm", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    parse = commands.add_parser("parse", help="turn a prompt (or a JSONL file of prompts) into job specs")
    parse.add_argument("prompt", nargs="?", help="the prompt")
    parse.add_argument(
        "--jsonl",
        metavar="FILE",
        help='one prompt per line: a JSON string or {"prompt": ...}; "-" reads stdin',
    )
    parse.set_defaults(handler=cmd_parse)

    train = commands.add_parser("train", help="generate the data set and fine-tune the model")
    train.add_argument("--seed", type=int, default=0, help="member k trains with seed + k")
    train.add_argument("--members", type=int, default=2, help="models to train and average")
    train.add_argument("--examples", type=int, help="training examples to generate")
    train.add_argument("--epochs", type=int)
    train.add_argument("--threads", type=int, default=2, help="torch threads (part of what reproduces a run)")
    train.add_argument("--out", help="model directory (default: intent_llm/model)")
    train.set_defaults(handler=cmd_train, sets_threads=True)

    evaluate = commands.add_parser(
        "eval",
        help="accuracy on the held-out family and the hand-written prompts",
        description=(
            "Parses the held-out family (generated from the training seed) and every written set in "
            "intent_llm/data/, and prints per-field accuracy, exact match and refusals per set. "
            "The shipped model's scores are in intent_llm/model/scores.json; to check them: "
            "python -m intent_llm eval --json | diff - intent_llm/model/scores.json"
        ),
    )
    evaluate.add_argument("--model", help="model directory (default: intent_llm/model)")
    evaluate.add_argument(
        "--members", nargs="+", metavar="NAME", help="average only these members (default: all)"
    )
    evaluate.add_argument("--heldout", type=int, default=1000, help="held-out examples to generate")
    evaluate.add_argument("--seed", type=int, help="seed of the held-out set (default: the training seed)")
    evaluate.add_argument("--cases", help="another JSONL file of {prompt, expect} / {prompt, error} cases")
    evaluate.add_argument("--failures", action="store_true", help="print every wrong answer")
    evaluate.add_argument(
        "--save", action="store_true", help="write the scores to the model directory's scores.json"
    )
    evaluate.add_argument(
        "--json", action="store_true", help="print the scores as scores.json holds them, instead of a table"
    )
    evaluate.set_defaults(handler=cmd_eval)

    bench = commands.add_parser("bench", help="load time, parse latency and peak memory")
    bench.add_argument("--prompts", type=int, default=100)
    bench.set_defaults(handler=cmd_bench)

    args = parser.parse_args(argv)
    return_freed_tensors_to_the_os()
    try:
        if not getattr(args, "sets_threads", False):
            _apply_threads(intent_threads(os.environ))
        return int(args.handler(args))
    except ConfigurationError as exc:
        print(f"configuration: {exc}", file=sys.stderr)
        return EXIT_REFUSED


def _apply_threads(threads: int) -> None:
    """Torch threads for this process, set once at its start (train sets its own, --threads)."""
    import torch

    torch.set_num_threads(threads)


if __name__ == "__main__":
    sys.exit(main())
