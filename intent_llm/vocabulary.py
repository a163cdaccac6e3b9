"""The spelling corrector's domain vocabulary, from the training phrasings.

Computed when a model is trained and saved in its config.json (`domain_vocabulary`), so
parsing never imports the phrasing tables.
"""

from __future__ import annotations

from collections import Counter

from . import negatives, phrasings
from .templates import compile_template


def domain_vocabulary() -> dict[str, int]:
    """Words of the training phrasings with their frequency: what a typo is corrected to."""
    counts: Counter[str] = Counter()

    def add_template(source: str) -> None:
        for word in compile_template(source).words():
            counts.update(_words(word))

    for table in phrasings.NUMBER_PHRASES.values():
        for source in table["train"]:
            add_template(source)
    for table in phrasings.ENUM_FRAMES.values():
        for source in table["train"]:
            add_template(source)
    for head in phrasings.ENUM_SURFACES.values():
        for table in head.values():
            for surface in table["train"]:
                counts.update(_words(surface))
    for source, _, family in phrasings.COMBOS:
        if family == "train":
            add_template(source)
    for group in (phrasings.FRAMES, phrasings.FIXED_PHRASES, phrasings.SUFFIXES):
        for source in group["train"]:
            add_template(source)
    for names in phrasings.FIELD_NAMES.values():
        for name in names:
            counts.update(_words(name))
    for pairs in (phrasings.CLIENT_NOUNS, phrasings.ROUND_NOUNS, phrasings.EPOCH_NOUNS):
        for singular, plural in pairs["train"]:
            counts.update(_words(singular) + _words(plural))
    for table in negatives.NEGATIVES.values():
        for source in table["train"]:
            add_template(source)
    return {word: count for word, count in counts.items() if len(word) >= 4}


def _words(text: str) -> list[str]:
    out = []
    word = ""
    for char in text.lower():
        if char.isalpha() and char.isascii():
            word += char
        else:
            if word:
                out.append(word)
            word = ""
    if word:
        out.append(word)
    return out
