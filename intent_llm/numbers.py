"""The deterministic number scanner: finds every number a prompt writes and reads its value.

The model never reads digits itself: this scanner finds the spans ("40", "twenty", "ten
percent", "1/5", "a quarter", "1e-3", ".05", "10^-4", "ten to the minus three", "2k",
"10x") and the model only decides which spec field each span sets. Values stay as
written (10% is 10 with `percent`), the field decides the conversion (`field_value` in
decode.py), because "10%" means 0.1 as a ratio but 10 clients of 100 as a participation.

Digits glued to a name on their left (cifar10, resnet-18, int8, MiniLM-L6-v2, fp16) are
part of that name, not a number.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fourty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
# Words that are a whole number on their own ("a dozen clients", "a couple of epochs").
STANDALONE = {"dozen": 12, "couple": 2, "pair": 2, "single": 1}
DENOMINATORS = {
    "half": 2,
    "halves": 2,
    "third": 3,
    "thirds": 3,
    "quarter": 4,
    "quarters": 4,
    "fourth": 4,
    "fourths": 4,
    "fifth": 5,
    "fifths": 5,
    "sixth": 6,
    "sixths": 6,
    "seventh": 7,
    "sevenths": 7,
    "eighth": 8,
    "eighths": 8,
    "ninth": 9,
    "ninths": 9,
    "tenth": 10,
    "tenths": 10,
    "twentieth": 20,
    "twentieths": 20,
    "hundredth": 100,
    "hundredths": 100,
    "thousandth": 1000,
    "thousandths": 1000,
}
PERCENT_WORDS = ("percent", "per cent", "pct", "percentage", "%")

# Shorthands that, glued before digits, still write a field's number: r8, lr0.01, mu0.1,
# bs32, e5, C0.1, top5%. Any other letters glued to digits make a name: cifar10, int8,
# fp16, MiniLM-L6-v2, gpt2, t5.
GLUED_SHORTHANDS = frozenset(
    (
        "r",
        "rank",
        "lr",
        "mu",
        "bs",
        "b",
        "e",
        "ep",
        "c",
        "n",
        "top",
        "topk",
        "alpha",
        "seed",
        "k",
        "eta",
        "sigma",
    )
)
# Names whose number follows a space or hyphen: "cifar 10", "resnet-18", "sst-2", "int 8".
HYPHENATED_NAMES = frozenset(
    (
        "cifar",
        "resnet",
        "sst",
        "l",
        "v",
        "minilm",
        "gpt",
        "int",
        "fp",
        "bf",
        "mnist",
        "llama",
        "qwen",
        "bert",
        "t",
    )
)
_SPACED_NAME = re.compile(
    r"\b(?:cifar|resnet|res\s?net|sst|int|python|version|gpt|llama|minilm[\s\-]?l)[\s_\-]?(\d+)\b",
    re.IGNORECASE,
)

_DIGITS = r"(?:\d{1,3}(?:,\d{3})+|\d+)"
_NUMERIC = re.compile(
    r"""
    (?P<mant>(?:\d+(?:\.\d*)?|\.\d+))\s*(?:x|\*|times)\s*10\s*(?:\^|\*\*)\s*\(?(?P<exp1>[+-]?\s?\d+)\)?  # 1x10^-3
    | 10\s*(?:\^|\*\*)\s*\(?(?P<exp2>[+-]?\s?\d+)\)?                                      # 10^-3
    | (?P<sci>(?:\d+(?:\.\d*)?|\.\d+)[eE][+-]?\d+)                                           # 1e-3
    | (?P<frac_num>\d+)\s?/\s?(?P<frac_den>\d+)(?![\d/])                                     # 1/5
    | (?P<plain>(?:"""
    + _DIGITS
    + r"""(?:\.\d+)?|\.\d+))                                                               # 40, 1,000, 0.5, .05
    """,
    re.VERBOSE,
)
# Words, and every other visible character as its own token so punctuation ends a number.
_WORD = re.compile(r"[a-zA-Z]+|\S")


@dataclass(frozen=True)
class NumberSpan:
    """One number written in a prompt. `value` is what was written (10 for "10%")."""

    start: int
    end: int
    text: str
    value: float
    percent: bool = False
    fraction: bool = False  # written as a fraction: "1/5", "a fifth", "one in five", "half"
    decimal: bool = False  # written with a decimal point or exponent: "1.0", ".5", "1e-3"
    times: bool = False  # a multiplier: "10x"
    word: bool = False  # spelt out: "twenty", "ten percent"

    @property
    def is_whole(self) -> bool:
        return not (self.percent or self.fraction or self.times) and float(self.value).is_integer()

    @property
    def proportion(self) -> float | None:
        """The value as a share of a whole when it was written as one (10% -> 0.1, 1/5 -> 0.2)."""
        if self.percent:
            return self.value / 100
        if self.fraction or (self.decimal and 0 <= self.value <= 1):
            return self.value
        if not self.decimal and 0 < self.value < 1:
            return self.value
        return None

    def features(self) -> list[float]:
        """Shape of the written number, for the model: what kind, which magnitude."""
        magnitude = math.log10(abs(self.value)) if self.value else -12.0
        return [
            float(self.percent),
            float(self.fraction),
            float(self.decimal),
            float(self.times),
            float(self.word),
            float(self.is_whole),
            float(0 < self.value < 1),
            max(-8.0, min(8.0, magnitude)) / 4,
            float(self.is_whole and self.value >= 1000),
            float(self.is_whole and self.value in (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)),
        ]


NUMBER_FEATURES = 10


def _exponent(text: str) -> int:
    return int(text.replace(" ", ""))


def _glued_to_name(text: str, start: int) -> bool:
    """Digits that belong to a name (cifar10, resnet-18, MiniLM-L6-v2) or a version (v2.1)."""
    if start == 0:
        return False
    before = text[start - 1]
    if before.isdigit():
        return True
    if before == "." and start >= 2 and text[start - 2].isalnum():
        return True
    if before.isalpha():
        letters = re.search(r"[a-zA-Z]+$", text[:start])
        return bool(letters) and letters.group(0).lower() not in GLUED_SHORTHANDS  # type: ignore[union-attr]
    if before in "-_":
        letters = re.search(r"([a-zA-Z]+)[-_]$", text[:start])
        return bool(letters) and letters.group(1).lower() in HYPHENATED_NAMES  # type: ignore[union-attr]
    return False


def _numeric_spans(text: str, protected: list[tuple[int, int]]) -> list[NumberSpan]:
    spans: list[NumberSpan] = []
    for match in _NUMERIC.finditer(text):
        start, end = match.span()
        if spans and start < spans[-1].end:
            continue  # already read as the "5" of "1 in 5"
        if _inside(start, end, protected) or _glued_to_name(text, start):
            continue
        if match.group("exp1") is not None:
            value = float(f"{match.group('mant')}e{_exponent(match.group('exp1'))}")
            span = NumberSpan(start, end, match.group(0), value, decimal=True)
        elif match.group("exp2") is not None:
            value = float(f"1e{_exponent(match.group('exp2'))}")
            span = NumberSpan(start, end, match.group(0), value, decimal=True)
        elif match.group("sci") is not None:
            span = NumberSpan(start, end, match.group(0), float(match.group("sci")), decimal=True)
        elif match.group("frac_num") is not None:
            numerator, denominator = int(match.group("frac_num")), int(match.group("frac_den"))
            if denominator == 0 or numerator > denominator:
                continue  # a ratio like 3/2 or a date-like 12/5 is not a share of clients
            span = NumberSpan(start, end, match.group(0), numerator / denominator, fraction=True)
        else:
            raw = match.group("plain")
            value = float(raw.replace(",", ""))
            span = NumberSpan(start, end, raw, value, decimal="." in raw)
        spans.append(_with_suffix(text, span))
    return spans


_SUFFIX = re.compile(
    r"(?P<space>\s?)(?:(?P<pct>%|percent\b|per\s?cent\b|pct\b)|(?P<k>[kK])(?![a-zA-Z])|(?P<x>[x×])(?![a-zA-Z0-9]))"
)
_IN = re.compile(r"\s+in\s+(?:every\s+)?(?P<den>\d+)\b(?!\s*(?:%|percent|\.\d))")


def _with_suffix(text: str, span: NumberSpan) -> NumberSpan:
    """Attach a following %, "percent", "k" (thousands), "x" (times) or "in 5" (a share)."""
    suffix = _SUFFIX.match(text, span.end)
    if suffix:
        if suffix.group("pct"):
            return _replace(span, end=suffix.end(), text=text[span.start : suffix.end()], percent=True)
        if suffix.group("k") and not suffix.group("space"):
            return _replace(
                span, end=suffix.end(), text=text[span.start : suffix.end()], value=span.value * 1000
            )
        if suffix.group("x"):
            return _replace(span, end=suffix.end(), text=text[span.start : suffix.end()], times=True)
    share = _IN.match(text, span.end)
    if share and span.is_whole and 0 < span.value < int(share.group("den")) and span.value < 10:
        value = span.value / int(share.group("den"))
        return _replace(
            span, end=share.end(), text=text[span.start : share.end()], value=value, fraction=True
        )
    return span


def _replace(span: NumberSpan, **changes: Any) -> NumberSpan:
    return dataclasses.replace(span, **changes)


def _inside(start: int, end: int, regions: list[tuple[int, int]]) -> bool:
    return any(start < region_end and end > region_start for region_start, region_end in regions)


# --- numbers written in words ---------------------------------------------------------


@dataclass
class _Token:
    text: str
    start: int
    end: int

    @property
    def low(self) -> str:
        return self.text.lower()


def _word_tokens(text: str) -> list[_Token]:
    return [_Token(m.group(0), m.start(), m.end()) for m in _WORD.finditer(text)]


def _cardinal(tokens: list[_Token], i: int) -> tuple[float, int] | None:
    """A spelt-out whole number starting at tokens[i]: (value, index after it).

    "twenty five", "twenty-five", "a hundred", "two hundred and fifty", "three thousand";
    "one two" is two numbers, so a unit never follows a unit.
    """
    total = 0
    current = 0
    last = ""  # what the previous word was: unit, tens, hundred, big
    j = i
    if tokens[j].low in ("a", "an") and j + 1 < len(tokens) and tokens[j + 1].low in SCALES:
        current, last, j = 1, "unit", j + 1
    elif tokens[j].low in ("hundred", "thousand"):  # "hundred clients" is a hundred
        current, last = 1, "unit"
    while j < len(tokens):
        word = tokens[j].low
        following = tokens[j + 1].low if j + 1 < len(tokens) else ""
        if word in UNITS and (last in ("", "hundred", "big") or (last == "tens" and UNITS[word] < 10)):
            if last == "tens" and UNITS[word] == 0:
                break
            current += UNITS[word]
            last = "unit"
        elif word in TENS and last in ("", "hundred", "big"):
            current += TENS[word]
            last = "tens"
        elif word == "hundred" and last in ("unit", "tens") and current % 100 != 0:
            current = current * 100
            last = "hundred"
        elif word in ("thousand", "million") and last in ("unit", "tens", "hundred"):
            total += current * SCALES[word]
            current = 0
            last = "big"
        elif (
            word == "and"
            and last in ("hundred", "big")
            and (following in UNITS or following in TENS)
            or word == "-"
            and last == "tens"
            and following in UNITS
            and 0 < UNITS[following] < 10
        ):
            pass
        else:
            break
        j += 1
    if not last:
        return None
    return float(total + current), j


def _word_numbers(
    text: str, taken: list[tuple[int, int]], protected: list[tuple[int, int]]
) -> list[NumberSpan]:
    tokens = _word_tokens(text)
    spans: list[NumberSpan] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if _inside(token.start, token.end, taken + protected) or not token.text.isalpha():
            i += 1
            continue
        found = _word_number_at(text, tokens, i)
        if found is None:
            i += 1
            continue
        span, next_index = found
        spans.append(span)
        i = next_index
    return spans


def _word_number_at(text: str, tokens: list[_Token], i: int) -> tuple[NumberSpan, int] | None:
    low = tokens[i].low
    start = tokens[i].start

    def make(end_index: int, value: float, **flags: bool) -> tuple[NumberSpan, int]:
        end = tokens[end_index - 1].end
        span = NumberSpan(start, end, text[start:end], value, word=True, **flags)
        return span, end_index

    following = tokens[i + 1].low if i + 1 < len(tokens) else ""
    if low in ("a", "an") and following in STANDALONE:  # "a dozen", "a couple of", "a single"
        return make(i + 2, STANDALONE[following])
    if low == "single":
        return make(i + 1, 1)
    if low == "half":
        return make(i + 1, 0.5, fraction=True)
    if low in ("a", "an", "one") and following in DENOMINATORS:  # "a fifth", "one tenth"
        return make(i + 2, 1 / DENOMINATORS[following], fraction=True)
    cardinal = _cardinal(tokens, i)
    if cardinal is None:
        decimal = _point_decimal(tokens, i, 0.0)  # "point zero five"
        return None if decimal is None else make(decimal[1], decimal[0], decimal=True)
    value, j = cardinal
    if j + 1 < len(tokens) and tokens[j].low == "-" and tokens[j + 1].low in DENOMINATORS:
        j += 1  # "one-fifth"
    if j < len(tokens) and tokens[j].low in DENOMINATORS and 1 <= value < DENOMINATORS[tokens[j].low]:
        return make(j + 1, value / DENOMINATORS[tokens[j].low], fraction=True)  # "two thirds"
    power = _power_of_ten(tokens, j, value)
    if power is not None:
        return make(power[1], power[0], decimal=True)
    decimal = _point_decimal(tokens, j, value)
    if decimal is not None:
        return make(decimal[1], decimal[0], decimal=True)
    share = _one_in(tokens, j, value)
    if share is not None:
        return make(share[1], share[0], fraction=True)
    percent = _percent_after(tokens, j)
    if percent is not None:
        return make(percent, value, percent=True)
    return make(j, value)


def _one_in(tokens: list[_Token], j: int, value: float) -> tuple[float, int] | None:
    """ "one in five" (a share) -- but not "five of twenty", which names two counts."""
    if j + 1 >= len(tokens) or tokens[j].low != "in" or not 1 <= value < 10:
        return None
    after = j + 1
    if tokens[after].low == "every" and after + 1 < len(tokens):
        after += 1
    whole = _cardinal(tokens, after)
    if whole is None or whole[0] <= value:
        return None
    return value / whole[0], whole[1]


def _percent_after(tokens: list[_Token], j: int) -> int | None:
    if j < len(tokens) and tokens[j].low in ("percent", "pct", "%"):
        return j + 1
    if j + 1 < len(tokens) and tokens[j].low == "per" and tokens[j + 1].low == "cent":
        return j + 2
    return None


_DIGIT_WORDS = {**{k: v for k, v in UNITS.items() if v < 10}, "o": 0}


def _point_decimal(tokens: list[_Token], j: int, whole: float) -> tuple[float, int] | None:
    """ "point zero one" after an optional whole part: 0.01."""
    if j >= len(tokens) or tokens[j].low != "point":
        return None
    digits = ""
    k = j + 1
    while k < len(tokens) and tokens[k].low in _DIGIT_WORDS:
        digits += str(_DIGIT_WORDS[tokens[k].low])
        k += 1
    if not digits:
        return None
    return whole + float("0." + digits), k


def _power_of_ten(tokens: list[_Token], j: int, value: float) -> tuple[float, int] | None:
    """ "ten to the minus three" / "ten to the power of minus 3" (a spelt-out base)."""
    if value != 10 or j >= len(tokens) or tokens[j].low != "to":
        return None
    k = j + 1
    if k < len(tokens) and tokens[k].low == "the":
        k += 1
    if k < len(tokens) and tokens[k].low == "power":
        k += 1
        if k < len(tokens) and tokens[k].low == "of":
            k += 1
    sign = 1
    if k < len(tokens) and tokens[k].low in ("minus", "negative", "-"):
        sign = -1
        k += 1
    exponent = _cardinal(tokens, k) if k < len(tokens) else None
    if exponent is None:
        return None
    return float(f"1e{sign * int(exponent[0])}"), exponent[1]


_DIGIT_POWER = re.compile(
    r"(?P<base>10)\s+to\s+the\s+(?:power\s+of\s+)?(?P<sign>minus\s+|negative\s+|-\s?)?(?P<exp>\d+)\b",
    re.IGNORECASE,
)
_WORD_POWER_DIGITS = re.compile(
    r"\bten\s+to\s+the\s+(?:power\s+of\s+)?(?P<sign>minus\s+|negative\s+|-\s?)?(?P<exp>\d+)\b",
    re.IGNORECASE,
)


def _digit_powers(text: str, protected: list[tuple[int, int]]) -> list[NumberSpan]:
    """ "10 to the minus 3" and "ten to the -4": mixed spellings of a power of ten."""
    spans = []
    for pattern in (_DIGIT_POWER, _WORD_POWER_DIGITS):
        for match in pattern.finditer(text):
            if _inside(*match.span(), protected):
                continue
            sign = -1 if match.group("sign") else 1
            value = float(f"1e{sign * int(match.group('exp'))}")
            spans.append(NumberSpan(match.start(), match.end(), match.group(0), value, decimal=True))
    return spans


def _named_number_regions(text: str) -> list[tuple[int, int]]:
    """Digits that belong to a name written with a space/hyphen: "cifar 10", "resnet-18"."""
    return [match.span(1) for match in _SPACED_NAME.finditer(text)]


def scan_numbers(text: str, protected: list[tuple[int, int]] | None = None) -> list[NumberSpan]:
    """Every number in `text`, in order, skipping the `protected` character regions
    (file paths, model ids, quoted names) and digits that belong to a name."""
    regions = list(protected or []) + _named_number_regions(text)
    powers = _digit_powers(text, regions)
    power_regions = [(span.start, span.end) for span in powers]
    numeric = [
        span for span in _numeric_spans(text, regions) if not _inside(span.start, span.end, power_regions)
    ]
    taken = power_regions + [(span.start, span.end) for span in numeric]
    words = _word_numbers(text, taken, regions)
    return sorted(powers + numeric + words, key=lambda span: span.start)
