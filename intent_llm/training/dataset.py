"""Generated examples as training samples (label indices); evaluate.to_cases makes them evaluation cases."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..featurize import Prepared, label_spans, prepare
from ..fields import ENUM_HEADS, FIXABLE_FIELDS, INTENT_LABELS, SPAN_LABELS
from ..normalize import SpellingCorrector
from .generator import Example


@dataclass
class Sample:
    prepared: Prepared
    intent: int
    heads: dict[str, int]
    spans: list[int]
    fixed: np.ndarray


def to_samples(examples: list[Example], corrector: SpellingCorrector | None) -> tuple[list[Sample], int]:
    """Label indices for every example; returns the samples and how many were dropped."""
    samples = []
    dropped = 0
    for example in examples:
        prepared = prepare(example.prompt, corrector)
        labels = label_spans(prepared, example.numbers)
        if labels is None:
            dropped += 1
            continue
        fixed = np.zeros(len(FIXABLE_FIELDS), dtype=np.float32)
        for name in example.fixed:
            fixed[FIXABLE_FIELDS.index(name)] = 1.0
        samples.append(
            Sample(
                prepared=prepared,
                intent=INTENT_LABELS.index("job" if example.job else "refuse"),
                heads={head: ENUM_HEADS[head].index(example.labels[head]) for head in ENUM_HEADS},
                spans=[SPAN_LABELS.index(label) for label in labels],
                fixed=fixed,
            )
        )
    return samples, dropped
