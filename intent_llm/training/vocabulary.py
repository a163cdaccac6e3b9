"""The spelling corrector's domain vocabulary, from the training phrasings.

Computed when a model is trained and saved in its config.json (`domain_vocabulary`), so
parsing never imports the phrasing tables.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from . import negatives, phrasings
from .templates import compile_template


def domain_vocabulary() -> dict[str, int]:
    """Words of the training phrasings with their frequency: what a typo is corrected to."""
    counts: Counter[str] = Counter()
    for words in _training_words():
        counts.update(words)
    return {word: count for word, count in counts.items() if len(word) >= 4}


def _training_words() -> Iterator[list[str]]:
    """The words of every training phrasing, table by table in a fixed order (the order in
    which words are first counted is the order of the vocabulary's keys)."""
    yield from _template_words(_number_and_enum_templates())
    for head in phrasings.ENUM_SURFACES.values():
        for table in head.values():
            yield from (_words(surface) for surface in table["train"])
    yield from _template_words(_combo_and_frame_templates())
    for names in phrasings.FIELD_NAMES.values():
        yield from (_words(name) for name in names)
    for pairs in (phrasings.CLIENT_NOUNS, phrasings.ROUND_NOUNS, phrasings.EPOCH_NOUNS):
        yield from (_words(singular) + _words(plural) for singular, plural in pairs["train"])
    for table in negatives.NEGATIVES.values():
        yield from _template_words(table["train"])


def _number_and_enum_templates() -> Iterator[str]:
    for table in phrasings.NUMBER_PHRASES.values():
        yield from table["train"]
    for table in phrasings.ENUM_FRAMES.values():
        yield from table["train"]


def _combo_and_frame_templates() -> Iterator[str]:
    yield from (source for source, _, family in phrasings.COMBOS if family == "train")
    for group in (phrasings.FRAMES, phrasings.FIXED_PHRASES, phrasings.SUFFIXES):
        yield from group["train"]


def _template_words(sources: Iterable[str]) -> Iterator[list[str]]:
    for source in sources:
        for word in compile_template(source).words():
            yield _words(word)


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
