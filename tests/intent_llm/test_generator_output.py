"""The generated data is pinned: a refactoring of the generator must not change one byte of it.

The expected digests were computed with the generator as it stood before the mccabe
refactoring of `sample_assignment`, `expected_values` and `domain_vocabulary` (the same
payloads as the tests below, hashed by `_digest`), and checked unchanged after it. They change whenever the
data changes -- a new phrasing, value, share or `rng` draw in generator*.py, phrasings.py,
negatives.py or templates.py. That is sometimes intended: then update the digests
deliberately, in the same change, and say so (a model trained before no longer matches the
generator's data).
"""

import dataclasses
import hashlib
import json
import random
from typing import Any

from intent_llm.training.generator import FAMILIES, expected_values, generate, sample_assignment
from intent_llm.training.vocabulary import domain_vocabulary

GENERATED = "a25a7b518a66f3c566a4d3099af15fc524a8dec5a210fafe205aee008d0887ca"
ASSIGNMENTS = "bdf689b98d9e912c367d5c86236a0368e7c7165efb4322d199c53cd8daf72eb7"
VOCABULARY = "0b68068b861a53ba8d1d85cb9167769753fa4d556026838ec64b293df2d5f0c6"


def _digest(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()


def test_generated_examples_are_unchanged():
    examples = [
        dataclasses.asdict(example)
        for family in FAMILIES
        for seed in range(5)
        for example in generate(60, seed, family)
    ]
    assert _digest(examples) == GENERATED


def test_sampled_assignments_and_their_expected_values_are_unchanged():
    rng = random.Random(0)
    draws: list[Any] = []
    for index in range(1000):
        verbosity = rng.choice([0.25, 0.45, 0.6, 0.8, 1.0, 1.4, 2.0, 3.0])
        chosen = sample_assignment(rng, verbosity, eval_family=bool(index % 2))
        expect = expected_values(chosen, {"hf": "org/model", "path": "data.csv"})
        draws.append([list(chosen.items()), list(expect.items())])
    draws.append(rng.random())  # the draws after the last assignment are the same too
    assert _digest(draws) == ASSIGNMENTS


def test_domain_vocabulary_is_unchanged():
    # Sorted: the order of the dict's keys follows set iteration, so it depends on PYTHONHASHSEED.
    assert _digest(sorted(domain_vocabulary().items())) == VOCABULARY
