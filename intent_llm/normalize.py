"""Prompt normalisation before the model: strings kept verbatim, symbols spelt, typos fixed.

1. `extract_strings` finds what the user wrote that must be kept exactly as written and
   never read for numbers: the data set path, a Hugging Face model id, the job's name.
2. `normalize_prompt` rewrites everything else into the plain form the model was
   trained on: Unicode punctuation to ASCII, superscript exponents (10⁻³ -> 10^-3),
   Greek letters to their names (μ -> mu, η -> eta, σ -> sigma), and, with a
   `SpellingCorrector`, misspelt domain words back to the word (MNSIT -> mnist).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

# --- strings kept as written ------------------------------------------------------------

_DATA_EXTENSIONS = r"(?:csv|tsv|txt|jsonl|json|parquet)"
_QUOTED_PATH = re.compile(
    r"""(?P<q>["'`])(?P<path>(?:[~.]{0,2}/)[^"'`\n]+|[^"'`\n]+\.""" + _DATA_EXTENSIONS + r""")(?P=q)"""
)
# POSIX or Windows ("C:\Users\ana\x.csv", "C:/data/x.csv") paths to a data file.
_FILE_PATH = re.compile(
    r"(?<![\w/\\@:])(?P<path>(?:[A-Za-z]:[\\/]|~|\.{1,2})?[\\/]?(?:[\w\-.]+[\\/])*[\w\-.]*[\w\-]\."
    + _DATA_EXTENSIONS
    + r")(?![\w/\\])",
    re.IGNORECASE,
)
_DIR_PATH = re.compile(r"(?<![\w/:])(?P<path>(?:~|\.{1,2})?/[A-Za-z_][\w\-.]*(?:/[\w\-.]+)*/?)")
_HF_PREFIXED = re.compile(r"\bhf\s?:\s?(?P<id>[\w\-.]+(?:/[\w\-.]+)?)", re.IGNORECASE)
_HF_CONTEXT = re.compile(
    r"\b(?:hugging\s?face|hf)(?:'s)?(?:\s+hub)?(?:\s+(?:model|checkpoint|encoder))?\s+(?:model\s+)?[\"'`]?(?P<id>[\w\-.]+/[\w\-.]+|[A-Za-z][\w.]*-[\w\-.]+)",
    re.IGNORECASE,
)
_HF_WELL_KNOWN = re.compile(
    r"(?<![\w/])(?P<id>(?:[\w\-]+/)?(?:distil)?(?:bert|roberta|albert|deberta|electra|xlm-roberta|bart|mpnet|tinybert|mobilebert|minilm|bge|e5)"
    r"(?:-[\w.]+)+)(?![\w/])",
    re.IGNORECASE,
)
# A local transformers model directory named as the model ("the checkpoint at ./models/bert-tiny").
_HF_LOCAL = re.compile(
    r"\b(?:checkpoint|backbone|encoder|transformer|transformers model|model weights|model)\s+(?:at|in|from|under)\s+"
    # A path ending in a data file ("point the model at ./exports/tickets.csv") is the data.
    r"[\"'`]?(?![^\s\"'`]*\." + _DATA_EXTENSIONS + r"(?![\w/]))"
    r"(?P<id>(?:~|\.{1,2})?/[\w\-.]+(?:/[\w\-.]+)*)",
    re.IGNORECASE,
)
# The bundled encoder, however it is spelt, is the built-in "minilm" model, not an hf: id.
_BUNDLED_MINILM = re.compile(r"^(?:sentence-transformers/)?(?:all-)?minilm-l6(?:-v2)?$", re.IGNORECASE)
_NAME = re.compile(
    r"\b(?:call(?:ed)?|name(?:d)?|title(?:d)?|label(?:led)?)\s+(?:(?:it|the\s+job|this\s+job|the\s+run|this\s+run|the\s+experiment|this\s+experiment|this)\s+)?(?:as\s+)?"
    r"(?P<value>\"[^\"\n]{1,200}\"|'[^'\n]{1,200}'|`[^`\n]{1,200}`)"
    r"|\b(?:call|name)\s+(?:it|the\s+job|this\s+job|the\s+run|this\s+run|the\s+experiment)\s+(?P<bare>[A-Za-z0-9][\w\-.]*)"
    r"|\b(?:job|run|experiment)[\s_-]?name\s*(?:[:=]|is)?\s*(?P<keyed>\"[^\"\n]{1,200}\"|'[^'\n]{1,200}'|[A-Za-z0-9][\w\-.]*)"
    r"|(?:^|[\s,;{])\"?name\"?\s*[:=]\s*(?P<kv>\"[^\"\n]{1,200}\"|'[^'\n]{1,200}'|[A-Za-z0-9][\w\-.]*)",
    re.IGNORECASE,
)


@dataclass
class ExtractedStrings:
    """Verbatim strings from a prompt and the character regions they occupy."""

    dataset_path: str | None = None
    hf_model: str | None = None
    bundled_minilm: bool = False
    name: str | None = None
    regions: list[tuple[int, int]] = field(default_factory=list)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'`":
        return value[1:-1].strip()
    return value.rstrip(".,;:")


def extract_strings(text: str) -> ExtractedStrings:
    """Path, Hugging Face id and job name, exactly as the user wrote them."""
    found = ExtractedStrings()
    name = _NAME.search(text)
    if name:
        group = next(g for g in ("value", "bare", "keyed", "kv") if name.group(g))
        found.name = _unquote(name.group(group))
        found.regions.append(name.span(group))
    for pattern in (_HF_PREFIXED, _HF_LOCAL, _HF_CONTEXT, _HF_WELL_KNOWN):
        match = pattern.search(text)
        if match and not _overlaps(match.span("id"), found.regions):
            model_id = match.group("id").rstrip(".,;:")
            if _BUNDLED_MINILM.match(model_id):
                found.bundled_minilm = True
            else:
                found.hf_model = model_id
            found.regions.append((match.start("id"), match.start("id") + len(model_id)))
            break
    for pattern in (_QUOTED_PATH, _FILE_PATH, _DIR_PATH):
        for match in pattern.finditer(text):
            if _overlaps(match.span("path"), found.regions):
                continue
            path = match.group("path").rstrip(".,;:")
            if pattern is _DIR_PATH and path.count("/") < 2 and not path.startswith(("~", ".")):
                continue  # "/s", "/round" are not paths; "/data/x" and "./x" are
            found.dataset_path = path
            found.regions.append((match.start("path"), match.start("path") + len(path)))
            break
        if found.dataset_path:
            break
    found.regions.sort()
    return found


def _overlaps(span: tuple[int, int], regions: Iterable[tuple[int, int]]) -> bool:
    return any(span[0] < end and span[1] > start for start, end in regions)


# --- symbols and Unicode ----------------------------------------------------------------

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_SUPERSCRIPT_RUN = re.compile(r"[⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+")
_SYMBOLS = {
    "μ": " mu ",
    "µ": " mu ",
    "η": " eta ",
    "α": " alpha ",
    "β": " beta ",
    "σ": " sigma ",
    "δ": " delta ",
    "ε": " epsilon ",
    "λ": " lambda ",
    "τ": " tau ",
    "γ": " gamma ",
    "×": "x",
    "−": "-",
    "–": "-",
    "—": " - ",
    "‐": "-",
    "‑": "-",
    "’": "'",
    "‘": "'",
    "“": '"',
    "”": '"',
    "≈": " ",
    "→": " -> ",
    "…": "...",
    "\u00a0": " ",
}
_SYMBOL_PATTERN = re.compile("|".join(map(re.escape, _SYMBOLS)))
_MIDDLE_DOT_POWER = re.compile(r"\s*[·⋅]\s*10")
_SPACES = re.compile(r"[ \t]+")


def normalize_symbols(text: str) -> str:
    text = _SUPERSCRIPT_RUN.sub(lambda m: "^" + m.group(0).translate(_SUPERSCRIPTS), text)
    text = _MIDDLE_DOT_POWER.sub("x10", text)
    text = _SYMBOL_PATTERN.sub(lambda m: _SYMBOLS[m.group(0)], text)
    text = unicodedata.normalize("NFKC", text)
    return _SPACES.sub(" ", text)


# --- spelling -----------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z]{4,}")


def damerau_levenshtein(a: str, b: str) -> int:
    """Edit distance counting an adjacent transposition ("mnsit" -> "mnist") as one edit."""
    previous_previous: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous_previous[j - 2] + 1)
        previous_previous, previous = previous, current
    return previous[len(b)]


def _deletions(word: str, depth: int) -> set[str]:
    found = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        found |= frontier
    return found


class SpellingCorrector:
    """Fixes misspelt domain words (cleints, rouns, MNSIT, fedporx, dirchlet).

    A word is only changed when it is neither a known English word (the encoder's
    vocabulary) nor a domain word, into the closest domain word within one edit (two
    for words of eight letters or more); ties go to the word with the same last letter,
    then to the more frequent one. Lookups use a
    deletion index (SymSpell), so a prompt costs microseconds, not a vocabulary scan.
    """

    def __init__(self, domain_words: dict[str, int], known_words: Iterable[str]) -> None:
        self.domain = {word.lower(): count for word, count in domain_words.items() if len(word) >= 4}
        self.known = {word.lower() for word in known_words} | set(self.domain)
        self.index: dict[str, list[str]] = {}
        for word in self.domain:
            for deleted in _deletions(word, 2 if len(word) >= 7 else 1):
                self.index.setdefault(deleted, []).append(word)

    def correct_word(self, word: str) -> str:
        low = word.lower()
        if low in self.known:
            return word
        budget = 2 if len(low) >= 8 else 1
        candidates: set[str] = set()
        for deleted in _deletions(low, budget):
            candidates.update(self.index.get(deleted, ()))
        scored = []
        for candidate in candidates:
            distance = damerau_levenshtein(low, candidate)
            if distance <= budget:
                # Ties go to the word that keeps the typo's ending (rouns -> rounds, not round).
                scored.append((distance, candidate[-1] != low[-1], -self.domain[candidate], candidate))
        if not scored:
            return word
        return min(scored)[-1]

    def correct(self, text: str) -> str:
        return _WORD.sub(lambda m: self.correct_word(m.group(0)), text)


# --- the whole pass -------------------------------------------------------------------------


@dataclass
class NormalizedPrompt:
    """The model's view of a prompt; `regions` are the verbatim strings inside `text`."""

    text: str
    strings: ExtractedStrings
    regions: list[tuple[int, int]]


def normalize_prompt(prompt: str, corrector: SpellingCorrector | None = None) -> NormalizedPrompt:
    """Normalise every part of the prompt except its verbatim strings, which are copied."""
    strings = extract_strings(prompt)
    pieces: list[str] = []
    regions: list[tuple[int, int]] = []
    cursor = 0
    length = 0
    for start, end in strings.regions:
        outside = normalize_symbols(prompt[cursor:start])
        if corrector is not None:
            outside = corrector.correct(outside)
        pieces.append(outside)
        length += len(outside)
        pieces.append(prompt[start:end])
        regions.append((length, length + end - start))
        length += end - start
        cursor = end
    tail = normalize_symbols(prompt[cursor:])
    pieces.append(corrector.correct(tail) if corrector is not None else tail)
    return NormalizedPrompt("".join(pieces), strings, regions)
