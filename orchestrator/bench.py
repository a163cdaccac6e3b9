"""`python -m orchestrator.bench`: the engine's benchmark on digits, printed as markdown.

Runs a fixed matrix of jobs in this process (the same engine steps as every
runner) and prints, per run: final test accuracy, total bytes uploaded and
downloaded, the upload's compression ratio (the same updates uncompressed /
what was sent), client CPU seconds, mean simulated round latency, and wall time;
then checks the engine's acceptance figures against what it measured.

Every run shares the base spec below (seeds fixed) and changes one thing.
`--output docs/benchmarks.md` also writes the report there, with the machine it ran on.
`python -m orchestrator.bench load --url http://127.0.0.1:8000 --token TOKEN` is another
benchmark: the REST API under concurrent clients (orchestrator.load_bench).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from jobspec import JobSpec
from jobspec.fields import enum_values

from .fl.config import configure_from_environment
from .fl.engine import runtime_for
from .fl.partition import label_skew
from .fl.simulation import InProcessJob

BASE: dict[str, Any] = {
    "dataset": "digits",
    "model": "mlp",
    "num_clients": 10,
    "rounds": 20,
    "local_epochs": 2,
    "optimizer": "adam",
    "learning_rate": 0.01,
    "seed": 0,
}
ATTACK = {"attack": {"kind": "sign_flip", "fraction": 0.2}}
SKEW = {"partition": {"scheme": "dirichlet", "alpha": 0.1}}
FEW_CLIENTS = {"clients_per_round": 4}


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    note: str
    rows: list[tuple[str, dict[str, Any]]]  # (label, overrides of BASE); the first row is the baseline
    seeds: tuple[int, ...] = (0,)  # figures are means over these seeds


def algorithms_for_the_base_job() -> list[str]:
    """Every algorithm of the contract that the base job (an mlp, no LoRA) can run."""
    fitting = []
    for name in enum_values("algorithm"):
        try:
            JobSpec(algorithm=name)
        except ValidationError:
            continue
        fitting.append(name)
    return fitting


SECTIONS = [
    Section(
        "strategies",
        "Strategies (iid)",
        "Every algorithm on the same iid split; server learning rates are the contract's defaults "
        "(1.0, and 0.01 for the adaptive optimizers).",
        [(name, {"algorithm": name}) for name in algorithms_for_the_base_job()],
    ),
    Section(
        "compression",
        "Upload compression (fedavg, iid)",
        "Only uploads are compressed; downloads stay dense. Ratios come from the real payloads "
        "(values, indices, scales and headers included). Means over seeds 0, 1 and 2: one test "
        "example is 0.28 point and the final accuracy of a single run moves by about a point from "
        "round to round, so one seed cannot resolve the half-point differences this section is about.",
        [
            ("none", {}),
            ("topk 0.1 + error feedback", {"compression": {"method": "topk", "ratio": 0.1}}),
            (
                "topk 0.1, no error feedback",
                {"compression": {"method": "topk", "ratio": 0.1, "error_feedback": False}},
            ),
            ("int8", {"compression": {"method": "int8"}}),
            ("qsgd 4 bits", {"compression": {"method": "qsgd", "bits": 4}}),
        ],
        seeds=(0, 1, 2),
    ),
    Section(
        "attack",
        "Robustness: 20% sign_flip attackers (scale 4)",
        "Two of the ten clients (fixed by the seed) upload -4 x their honest update every round; "
        "trimmed_mean drops 20% at each end; krum assumes 2 Byzantine clients.",
        [(name, {"algorithm": name, **ATTACK}) for name in ("fedavg", "krum", "median", "trimmed_mean")],
    ),
    Section(
        "skew",
        "Label skew: dirichlet alpha 0.1",
        "Each class is spread over the clients by Dir(0.1): clients differ in both size and classes.",
        [(name, {"algorithm": name, **SKEW}) for name in ("fedavg", "fedprox", "scaffold", "fedadam")],
    ),
    Section(
        "selection",
        "Client selection (4 of 10 clients per round)",
        "Simulated latency is the slowest selected client's download + training + upload time on its "
        "seeded system profile. deadline and oort aim at the median client's expected round time.",
        [
            (policy, {"selection": policy, **FEW_CLIENTS})
            for policy in ("random", "round_robin", "oort", "power_of_choice", "deadline")
        ],
    ),
    Section(
        "privacy",
        "Client-level DP (fedavg; noise from OS entropy, so these rows vary between runs)",
        "Updates clipped to L2 norm 1; Gaussian noise of std noise_multiplier x 1 on the sum. "
        "epsilon is at delta 1e-5 after the last round (Opacus RDP accountant, no sampling).",
        [
            ("no DP", {}),
            ("clip 1, noise 0.5", {"dp": {"clip_norm": 1.0, "noise_multiplier": 0.5}}),
            ("clip 1, noise 2", {"dp": {"clip_norm": 1.0, "noise_multiplier": 2.0}}),
        ],
    ),
]


@dataclass
class Result:
    accuracy: float
    per_seed: tuple[float, ...]
    bytes_up: int
    bytes_down: int
    bytes_up_uncompressed: int
    client_cpu_s: float
    sim_latency_s: float  # mean per round
    wall_s: float
    epsilon: float | None


_RESULTS: dict[str, Result] = {}


def run_job(overrides: dict[str, Any], seeds: tuple[int, ...]) -> Result:
    """Run one row of the matrix over its seeds (a spec that appears in several sections runs once)
    and average the figures."""
    runs = []
    for seed in seeds:
        spec = JobSpec.model_validate({**BASE, **overrides, "seed": seed})
        key = spec.model_dump_json()
        if key not in _RESULTS:
            _RESULTS[key] = _run(spec)
        runs.append(_RESULTS[key])
    if len(runs) == 1:
        return runs[0]

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    epsilons = [r.epsilon for r in runs if r.epsilon is not None]
    return Result(
        accuracy=mean([r.accuracy for r in runs]),
        per_seed=tuple(r.accuracy for r in runs),
        bytes_up=round(mean([r.bytes_up for r in runs])),
        bytes_down=round(mean([r.bytes_down for r in runs])),
        bytes_up_uncompressed=round(mean([r.bytes_up_uncompressed for r in runs])),
        client_cpu_s=mean([r.client_cpu_s for r in runs]),
        sim_latency_s=mean([r.sim_latency_s for r in runs]),
        wall_s=mean([r.wall_s for r in runs]),
        epsilon=mean(epsilons) if epsilons else None,
    )


def _run(spec: JobSpec) -> Result:
    started = time.perf_counter()
    accuracy, up, down, dense, cpu, latency, epsilon = 0.0, 0, 0, 0, 0.0, 0.0, None
    for summary in InProcessJob(spec):
        accuracy = summary.accuracy
        up += summary.bytes_up
        down += summary.bytes_down
        dense += int(summary.metrics.get("bytes_up_uncompressed", summary.bytes_up))
        cpu += summary.client_cpu_s
        latency += summary.metrics["sim_latency_s"]
        epsilon = summary.metrics.get("epsilon")
    wall = time.perf_counter() - started
    return Result(accuracy, (accuracy,), up, down, dense, cpu, latency / spec.rounds, wall, epsilon)


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def section_table(section: Section, results: dict[str, Result]) -> list[str]:
    baseline = results[section.rows[0][0]]
    several = len(section.seeds) > 1
    seeds_column = " per seed |" if several else ""
    lines = [
        f"### {section.title}",
        "",
        section.note,
        "",
        f"| run | accuracy |{seeds_column} vs first row | bytes up | bytes down | upload ratio "
        "| client CPU s | sim latency s/round | wall s | epsilon |",
        "| --- | ---: |"
        + (" ---: |" if several else "")
        + " ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, _ in section.rows:
        r = results[label]
        delta = 100 * (r.accuracy - baseline.accuracy)
        epsilon = f"{r.epsilon:.2f}" if r.epsilon is not None else "-"
        per_seed = f" {' / '.join(f'{a:.4f}' for a in r.per_seed)} |" if several else ""
        lines.append(
            f"| {label} | {r.accuracy:.4f} |{per_seed} {delta:+.1f} pt | {human_bytes(r.bytes_up)} "
            f"| {human_bytes(r.bytes_down)} | {r.bytes_up_uncompressed / r.bytes_up:.2f}x "
            f"| {r.client_cpu_s:.1f} | {r.sim_latency_s:.3f} | {r.wall_s:.1f} | {epsilon} |"
        )
    return [*lines, ""]


def acceptance(all_results: dict[str, dict[str, Result]]) -> list[str]:
    """The engine's acceptance figures, checked against this run's measurements."""
    checks: list[tuple[str, bool, str]] = []  # (check, passed, what was measured)
    compression = all_results.get("compression")
    if compression:
        none = compression["none"]
        for label, min_ratio, max_drop in (
            ("topk 0.1 + error feedback", 5.0, 0.01),
            ("int8", 3.5, 0.005),
            ("qsgd 4 bits", 6.0, 0.02),
        ):
            run = compression[label]
            ratio = none.bytes_up / run.bytes_up
            passed = ratio >= min_ratio and abs(none.accuracy - run.accuracy) <= max_drop
            checks.append(
                (
                    f"{label}: >= {min_ratio}x fewer bytes up, within {100 * max_drop:g} pt",
                    passed,
                    f"{ratio:.2f}x fewer bytes up, accuracy {run.accuracy:.4f} vs {none.accuracy:.4f}",
                )
            )
    attack = all_results.get("attack")
    if attack:
        fedavg, median, trimmed = attack["fedavg"], attack["median"], attack["trimmed_mean"]
        floor = min(median.accuracy, trimmed.accuracy)
        checks.append(
            (
                "sign_flip 20%: median, trimmed_mean >= 0.85; fedavg >= 10 pt below both",
                floor >= 0.85 and fedavg.accuracy <= floor - 0.10,
                f"median {median.accuracy:.4f}, trimmed_mean {trimmed.accuracy:.4f}, fedavg {fedavg.accuracy:.4f}",
            )
        )
    selection = all_results.get("selection")
    if selection:
        random = selection["random"]
        for policy in ("oort", "deadline"):
            run = selection[policy]
            checks.append(
                (
                    f"{policy}: less simulated time per round than random",
                    run.sim_latency_s < random.sim_latency_s,
                    f"{run.sim_latency_s:.3f} s vs random {random.sim_latency_s:.3f} s per round",
                )
            )
    lines = ["### Acceptance checks", "", "| check | result | measured |", "| --- | --- | --- |"]
    lines += [f"| {name} | {'pass' if ok else 'FAIL'} | {measured} |" for name, ok, measured in checks]
    return [*lines, ""]


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (
        f"{model}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, torch {torch.__version__}, 1 torch thread; "
        f"load average at start {load}"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["load"]:  # the API under concurrent clients: orchestrator.load_bench
        from .load_bench import main as load_main

        return load_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m orchestrator.bench", description=__doc__)
    parser.add_argument(
        "--sections",
        default=",".join(s.key for s in SECTIONS),
        help=f"comma-separated subset of: {', '.join(s.key for s in SECTIONS)}",
    )
    parser.add_argument("--output", help="also write the report to this markdown file")
    args = parser.parse_args(argv)
    wanted = [key.strip() for key in args.sections.split(",") if key.strip()]
    unknown = sorted(set(wanted) - {s.key for s in SECTIONS})
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    try:
        # Tiny models: threads only contend, and the machine is shared; one thread, whatever
        # FLOTILLA_TORCH_THREADS says (the figures below are for one thread).
        configure_from_environment(torch_threads=1)
    except ValueError as exc:
        parser.error(str(exc))
    started = time.perf_counter()
    header = [
        "# Engine benchmark",
        "",
        f"Generated by `python -m orchestrator.bench` on {datetime.date.today().isoformat()}.",
        "",
        f"Machine: {machine()}.",
        "",
        "Base job: digits, mlp, 10 clients, 20 rounds, local_epochs 2, adam, learning_rate 0.01, "
        "batch 32, seed 0, all clients every round unless stated. Wall and CPU times depend on the "
        "machine's load (the first run also pays for imports and loading data); accuracy, bytes and "
        "simulated latency are deterministic (except DP rows).",
        "",
        "Columns: final test accuracy (360 held-out digits); total bytes uploaded and downloaded over "
        "the job, as serialized; upload ratio = what the same updates weigh uncompressed / what was "
        "sent; client CPU seconds summed over clients; mean simulated round latency (the slowest "
        "selected client's download + training + upload on its seeded system profile); wall time.",
        "",
    ]
    print("\n".join(header), flush=True)
    report = list(header)
    all_results: dict[str, dict[str, Result]] = {}
    for section in SECTIONS:
        if section.key not in wanted:
            continue
        results = {label: run_job(overrides, section.seeds) for label, overrides in section.rows}
        all_results[section.key] = results
        lines = section_table(section, results)
        if section.key == "skew":
            lines[4:4] = [describe_split(section.rows[0][1]), ""]
        print("\n".join(lines), flush=True)
        report += lines
    lines = acceptance(all_results)
    lines.append(f"Total benchmark time: {time.perf_counter() - started:.0f} s.")
    print("\n".join(lines), flush=True)
    report += lines
    if args.output:
        Path(args.output).write_text("\n".join(report) + "\n", encoding="utf-8")
    return 0


def describe_split(overrides: dict[str, Any]) -> str:
    """What the partition looks like: sizes, classes per client and the mean label skew."""
    runtime = runtime_for(JobSpec.model_validate({**BASE, **overrides}))
    labels = runtime.dataset.y_train.numpy()
    sizes = [len(part) for part in runtime.client_indices]
    classes = [
        int((np.bincount(labels[part], minlength=runtime.dataset.num_classes) >= 0.05 * len(part)).sum())
        for part in runtime.client_indices
    ]
    skew = label_skew(labels, runtime.client_indices, runtime.dataset.num_classes)
    return (
        f"This split (seed 0): client sizes {min(sizes)} to {max(sizes)} examples; classes holding at least "
        f"5% of a client's data: {', '.join(map(str, classes))}; mean label skew {skew:.2f} "
        "(total variation from the global label mix: 0 = iid, 1 = disjoint)."
    )


if __name__ == "__main__":
    sys.exit(main())
