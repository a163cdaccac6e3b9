"""`python -m intent_llm bench`: the parser's speed and memory, as figures (not a test).

- first answer: wall time of a fresh `python -m intent_llm parse PROMPT` process;
- build: loading the model (encoder, LoRA merge, heads), imports excluded;
- latency: median and 90th percentile of single-prompt parses after loading;
- peak memory: the maximum resident set size of this process.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time

FIRST_PROMPT = "fmnist mlp 40 clients label-skewed alpha .3 fedprox mu 1e-2 compress to 4-bit qsgd"


def run_benchmark(count: int) -> dict[str, float]:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "intent_llm", "parse", FIRST_PROMPT],
        check=True,
        capture_output=True,
        text=True,
    )
    first_answer = time.perf_counter() - started

    started = time.perf_counter()
    import torch  # noqa: F401
    import transformers  # noqa: F401

    from ..loading import load_parser
    from .evaluate import load_cases, to_cases
    from .generator import generate

    imports = time.perf_counter() - started
    started = time.perf_counter()
    parser = load_parser()
    build = time.perf_counter() - started

    prompts = [case.prompt for case in load_cases() if case.prompt.strip()]
    prompts += [case.prompt for case in to_cases(generate(count, seed=12345, family="heldout"))]
    prompts = prompts[:count]
    for prompt in prompts[:5]:
        parser.parse(prompt)
    timings = []
    for prompt in prompts:
        started = time.perf_counter()
        parser.parse(prompt)
        timings.append(time.perf_counter() - started)
    timings.sort()
    figures = {
        "first_answer_s": round(first_answer, 2),
        "imports_s": round(imports, 2),
        "build_s": round(build, 2),
        "prompts": len(timings),
        "median_ms": round(1000 * statistics.median(timings), 1),
        "p90_ms": round(1000 * timings[int(0.9 * (len(timings) - 1))], 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(figures))
    return figures
