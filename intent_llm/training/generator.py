"""The tailored training set, generated reproducibly from a seed.

An example is built the way a person writes a request: pick the job they want (a
valid assignment of spec fields), say each part with a phrasing family from
phrasings.py -- one field at a time or several in one phrase, in any order, as prose,
terse lists or key=value pairs -- with numbers written in every form (digits, words,
fractions, percentages, scientific notation), then add what people add: a frame
("can you set up ..."), fillers, numbers that set nothing, typos, odd casing and
punctuation. About one prompt in seven is a refusal: chit-chat, unrelated tasks,
questions about federated learning, prompt-injection attempts, gibberish.

`family="train"` draws only from the training phrasings; `family="heldout"` uses the
held-out phrasings wherever a field has them, so its score measures unseen wording.

The assignment (and the values the parser must produce for it) is drawn in
generator_assignment.py, numbers are written out by generator_numbers.py; this module
says the assignment and assembles whole examples.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from jobspec import JobSpec

from ..decode import nest_fields
from ..featurize import offset_map, prepare
from ..fields import ENUM_HEADS, UNSET
from ..numbers import scan_numbers
from ..values import span_value
from . import phrasings as P
from .generator_assignment import expected_values as expected_values
from .generator_assignment import sample_assignment as sample_assignment
from .generator_numbers import FIELD_KIND as FIELD_KIND
from .generator_numbers import RENDERERS as RENDERERS
from .generator_numbers import int_words as int_words
from .generator_numbers import render_count as render_count
from .generator_numbers import render_real as render_real
from .generator_numbers import render_share as render_share
from .generator_numbers import render_small as render_small
from .negatives import negative_prompt
from .templates import Segment, Slot, compile_template

FAMILIES = ("train", "heldout")
KEY_VALUE_SHARE = 0.08  # prompts written wholly as key=value pairs ("clients=20 rounds=60 lr=1e-3")
# prompts that are nothing but a few settings, the way people type a search ("mnist fedavg",
# "cifar10 resnet18 fedyogi 100 rounds"): no frame, no closing, the shortest wording
TERSE_SHARE = 0.08
SETTING_SHARE = 0.15  # numbers said as "<setting> <link> n" ("the batch size set to 64"), training only


@dataclass
class Piece:
    """A run of prompt text; `label` marks a number slot (a field, or "none")."""

    text: str
    label: str | None = None
    verbatim: bool = False  # a path, model id or name: never noised


@dataclass
class Example:
    prompt: str
    job: bool
    labels: dict[str, str]  # every enum head -> value or "unset"
    numbers: list[tuple[int, int, str]]  # raw-prompt character spans of numbers -> field or "none"
    fixed: list[str]
    expect: dict[str, Any]  # dotted field -> the value the parser must produce
    family: str
    meta: dict[str, Any] = field(default_factory=dict)


# --- saying it ----------------------------------------------------------------------------


class Realizer:
    """Turns an assignment into phrases, drawing from one phrasing family."""

    def __init__(self, rng: random.Random, family: str, key_value: bool = False) -> None:
        self.rng = rng
        self.family = family
        self.key_value = key_value  # the whole prompt as "clients=20 rounds=60 ..." where it can
        self.strings: dict[str, str] = {}

    def pool(self, table: dict[str, list[Any]]) -> list[Any]:
        """Held-out examples use the held-out part where a table has one."""
        if self.family == "heldout" and table.get("heldout"):
            return table["heldout"]
        return table["train"]

    def phrase_pool(self, table: dict[str, list[str]]) -> list[str]:
        """`pool`, narrowed to key=value templates in a key=value prompt when it has any."""
        sources = self.pool(table)
        if self.key_value:
            return [source for source in sources if "=" in source] or sources
        return sources

    def noun(self, table: dict[str, list[tuple[str, str]]], count: Any) -> str:
        pool = table["train"] + (table["heldout"] if self.family == "heldout" else [])
        singular, plural = self.rng.choice(pool)
        return singular if count == 1 else plural

    def surface(self, head: str, value: str) -> list[Piece]:
        text = self.rng.choice(self.pool(P.ENUM_SURFACES[head][value]))
        pieces: list[Piece] = []
        for part in re.split(r"(\{path\}|\{hf\})", text):
            if part == "{path}":
                pieces.append(Piece(self.string("path"), verbatim=True))
            elif part == "{hf}":
                pieces.append(Piece(self.string("hf"), verbatim=True))
            elif part:
                pieces.append(Piece(part))
        return pieces

    def string(self, kind: str) -> str:
        if kind not in self.strings:
            table = {"path": P.PATHS, "hf": P.HF_IDS}[kind]
            self.strings[kind] = self.rng.choice(self.pool(table))
        return self.strings[kind]

    def number(self, name: str, value: Any, hint: str) -> Piece:
        field_name = "clients_per_round" if name == "client_fraction" else name
        if name == "times":
            return Piece(f"{value}{self.rng.choice(['x', 'x', '×', ' x'])}", "compression.ratio")
        return Piece(RENDERERS[FIELD_KIND[name]](value, self.rng, hint), field_name)

    def fill(self, segments: list[Segment], chosen: dict[str, Any], own: str | None) -> list[Piece]:
        pieces: list[Piece] = []
        for segment in segments:
            if isinstance(segment, str):
                pieces.append(Piece(segment))
                continue
            pieces.extend(self.fill_slot(segment, chosen, own))
        return pieces

    def fill_slot(self, slot: Slot, chosen: dict[str, Any], own: str | None) -> list[Piece]:
        name = slot.name
        if name == "clients":
            return [Piece(self.noun(P.CLIENT_NOUNS, chosen.get("num_clients")))]
        if name == "rounds_word":
            return [Piece(self.noun(P.ROUND_NOUNS, chosen.get("rounds")))]
        if name == "epochs_word":
            return [Piece(self.noun(P.EPOCH_NOUNS, chosen.get("local_epochs")))]
        if name == "n":
            assert own is not None
            value = chosen[own]
            if own == "clients_per_round":
                kind, amount = value
                return [
                    self.number(
                        "client_fraction" if kind == "share" else "clients_per_round", amount, slot.hint
                    )
                ]
            return [self.number(own, value, slot.hint)]
        if name == "times":
            assert own is not None
            return [self.number("times", chosen[own][1], slot.hint)]
        if name == "k":
            return [Piece(str(self.rng.choice([2, 3, 4, 5, 8, 12, 24, 100, 500])), "none")]
        if name in ENUM_HEADS:
            return self.surface(name, chosen[name])
        if name == "client_fraction":
            return [self.number("client_fraction", chosen["clients_per_round"][1], slot.hint)]
        if name == "clients_per_round":
            return [self.number("clients_per_round", chosen[name][1], slot.hint)]
        return [self.number(name, chosen[name], slot.hint)]

    def template(self, source: str, chosen: dict[str, Any], own: str | None = None) -> list[Piece]:
        return self.fill(compile_template(source).render(self.rng), chosen, own)

    # One phrase per remaining field.
    def field_phrase(self, key: str, chosen: dict[str, Any]) -> list[Piece]:
        rng = self.rng
        if key in ENUM_HEADS:
            frame = rng.choice(self.phrase_pool(P.ENUM_FRAMES[key]))
            template = compile_template(frame)
            pieces: list[Piece] = []
            for segment in template.render(rng):
                if isinstance(segment, Slot) and segment.name == "v":
                    pieces.extend(self.surface(key, chosen[key]))
                elif isinstance(segment, Slot):
                    pieces.extend(self.fill_slot(segment, chosen, key))
                else:
                    pieces.append(Piece(segment))
            return pieces
        if key == "name":
            name = chosen["name"]
            quoted = rng.choice([f'"{name}"', f"'{name}'"]) if " " in name or rng.random() < 0.5 else name
            frame = rng.choice(
                [
                    "call it ",
                    "name it ",
                    "name: ",
                    "job name ",
                    "name the job ",
                    "call the run ",
                    "name=",
                    "call the job ",
                    "name this job ",
                    "call this run ",
                    "the job is called ",
                    "label it ",
                ]
            )
            if frame in ("name: ", "name=") and " " in name:
                quoted = f'"{name}"'
            if frame in ("the job is called ", "label it "):  # only a quoted name reads back here
                quoted = rng.choice([f'"{name}"', f"'{name}'"])
            return [Piece(frame), Piece(quoted, verbatim=True)]
        if key == "hpo.fixed":
            names = [rng.choice(P.FIELD_NAMES[field_name]) for field_name in chosen[key]]
            joined = (
                names[0]
                if len(names) == 1
                else rng.choice([", ", ", ", " ", " and "]).join(names[:-1])
                + rng.choice([" and ", ", ", " & ", ", and ", " or ", " + "])
                + names[-1]
            )
            template = compile_template(rng.choice(self.pool(P.FIXED_PHRASES)))
            out: list[Piece] = []
            for segment in template.render(rng):
                out.append(Piece(joined) if isinstance(segment, Slot) else Piece(segment))
            return out
        if (
            self.family == "train"
            and not self.key_value
            and key in P.SETTING_NOUNS
            and rng.random() < SETTING_SHARE
        ):
            noun = rng.choice(P.SETTING_NOUNS[key])
            if rng.random() < 0.5:
                source = f"{noun} {rng.choice(P.SETTING_LINKS)}"
            else:
                bare_noun = re.sub(r"^\((the|my \|our) \)\?", "", noun)
                source = f"{rng.choice(P.SETTING_LINKS_VALUE_FIRST)} {bare_noun}"
            return self.template(source, chosen, key)
        table = P.NUMBER_PHRASES[
            "client_fraction" if key == "clients_per_round" and chosen[key][0] == "share" else key
        ]
        sources = self.phrase_pool(table)
        if key == "compression.ratio":
            times = isinstance(chosen[key], tuple)
            sources = (
                [s for s in P.NUMBER_PHRASES[key]["train"] if "{times}" in s]
                if times
                else [s for s in sources if "{times}" not in s]
            )
        return self.template(rng.choice(sources), chosen, key)


def _combo_fields(source: str) -> set[str]:
    names = {slot.name for slot in compile_template(source).slots()}
    names.discard("clients")
    return names


def realize(
    rng: random.Random, chosen: dict[str, Any], family: str, key_value: bool = False, terse: bool = False
) -> tuple[list[list[Piece]], dict[str, str]]:
    """Phrases (lists of pieces) that together say every choice; `terse` takes the shortest
    of three wordings for each field and adds no distracting numbers."""
    realizer = Realizer(rng, family, key_value)
    remaining = dict(chosen)
    phrases: list[list[Piece]] = []
    combos = [combo for combo in P.COMBOS if not key_value and (combo[2] == "train" or family == "heldout")]
    rng.shuffle(combos)
    for source, sets, combo_family in combos:
        if family == "heldout" and combo_family == "train" and rng.random() < 0.6:
            continue
        needed = _combo_fields(source)
        if "client_fraction" in needed:
            if not (
                isinstance(remaining.get("clients_per_round"), tuple)
                and remaining["clients_per_round"][0] == "share"
            ):
                continue
            needed = (needed - {"client_fraction"}) | {"clients_per_round"}
        elif "clients_per_round" in needed and not (
            isinstance(remaining.get("clients_per_round"), tuple)
            and remaining["clients_per_round"][0] == "count"
        ):
            continue
        if "compression.ratio" in needed and isinstance(remaining.get("compression.ratio"), tuple):
            continue
        if not needed <= set(remaining) or any(remaining.get(k) != v for k, v in sets.items()):
            continue
        if rng.random() > 0.4:
            continue
        phrases.append(realizer.template(source, chosen))
        for key in needed | set(sets):
            remaining.pop(key, None)
    if chosen.get("dataset") == "csv":
        remaining.setdefault("dataset", "csv")
    for key in list(remaining):
        wordings = [realizer.field_phrase(key, chosen) for _ in range(3 if terse else 1)]
        phrases.append(min(wordings, key=lambda phrase: sum(len(piece.text) for piece in phrase)))
    if not terse and rng.random() < 0.15:
        phrases.append(realizer.template(rng.choice(P.DISTRACTORS), chosen))
    return phrases, realizer.strings


# --- noise ----------------------------------------------------------------------------------

_KEYBOARD = {
    "a": "qwsz", "b": "vghn", "c": "xdfv", "d": "serfcx", "e": "wsdr", "f": "drtgvc", "g": "ftyhbv",
    "h": "gyujnb", "i": "ujko", "j": "huikmn", "k": "jiolm", "l": "kop", "m": "njk", "n": "bhjm",
    "o": "iklp", "p": "ol", "q": "wa", "r": "edft", "s": "awedxz", "t": "rfgy", "u": "yhji",
    "v": "cfgb", "w": "qase", "x": "zsdc", "y": "tghu", "z": "asx",
}  # fmt: skip


def typo(word: str, rng: random.Random) -> str:
    if len(word) < 3:
        return word
    i = rng.randrange(len(word) - 1) if len(word) > 3 else 1
    kind = rng.random()
    if kind < 0.35:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]  # swap: cleints
    if kind < 0.6:
        return word[:i] + word[i + 1 :]  # drop: rouns
    if kind < 0.75:
        return word[:i] + word[i] + word[i:]  # double
    low = word[i].lower()
    if low in _KEYBOARD:
        return word[:i] + rng.choice(_KEYBOARD[low]) + word[i + 1 :]  # neighbour key
    return word


def add_noise(pieces: list[Piece], rng: random.Random) -> list[Piece]:
    level = rng.random()
    typo_rate = 0.0 if level < 0.35 else 0.04 if level < 0.8 else 0.12
    casing = rng.random()
    drop_punct = rng.random() < 0.1
    out: list[Piece] = []
    for piece in pieces:
        if piece.label is not None or piece.verbatim:
            out.append(piece)
            continue
        text = piece.text
        if typo_rate:
            text = re.sub(
                r"[A-Za-z]{3,}",
                lambda m: typo(m.group(0), rng) if rng.random() < typo_rate else m.group(0),
                text,
            )
        if drop_punct:
            text = re.sub(r"[,.;!]", "", text)
        if casing < 0.3:
            text = text.lower()
        elif casing < 0.33:
            text = text.upper()
        elif casing < 0.4:
            text = re.sub(
                r"[a-z]+", lambda m: m.group(0).capitalize() if rng.random() < 0.3 else m.group(0), text
            )
        out.append(Piece(text))
    if casing >= 0.4 and out and not out[0].verbatim and out[0].label is None and out[0].text:
        out[0] = Piece(out[0].text[0].upper() + out[0].text[1:])
    return out


# --- whole examples -------------------------------------------------------------------------


def _render_text(source: str, rng: random.Random) -> str:
    """A template without slots (a frame or a closing), rendered to text."""
    return "".join(segment for segment in compile_template(source).render(rng) if isinstance(segment, str))


def _assemble(
    phrases: list[list[Piece]], rng: random.Random, family: str, key_value: bool = False, terse: bool = False
) -> list[Piece]:
    if rng.random() < 0.5:
        phrases.sort(key=lambda phrase: 0 if _mentions_data_or_model(phrase) else 1)
    connectors = P.CONNECTORS["train"] + (P.CONNECTORS["heldout"] * 2 if family == "heldout" else [])
    if key_value:
        connectors = [" ", " ", ", ", "; ", "\n", " | "]
    if terse:
        connectors = [" ", " ", ", ", ", ", " / ", "; ", " + "]
    style = rng.choice(connectors)
    pieces: list[Piece] = []
    frame_pool = P.FRAMES["heldout"] if family == "heldout" and rng.random() < 0.5 else P.FRAMES["train"]
    if not terse:
        pieces.append(Piece(_render_text(rng.choice(frame_pool), rng)))
    for index, phrase in enumerate(phrases):
        if index:
            connector = style if rng.random() < 0.7 else rng.choice(connectors)
            pieces.append(Piece(connector))
            if not terse and rng.random() < 0.06:
                pieces.append(Piece(rng.choice(P.FILLERS) + " "))
        pieces.extend(phrase)
    if terse:
        return pieces
    suffix_pool = P.SUFFIXES["heldout"] if family == "heldout" and rng.random() < 0.3 else P.SUFFIXES["train"]
    pieces.append(Piece(_render_text(rng.choice(suffix_pool), rng)))
    return pieces


def _mentions_data_or_model(phrase: list[Piece]) -> bool:
    text = " ".join(piece.text.lower() for piece in phrase)
    return any(
        word in text
        for word in ("mnist", "cifar", "digits", "sst", "news", ".csv", "mlp", "cnn", "resnet", "minilm")
    )


def _join(pieces: list[Piece]) -> tuple[str, list[tuple[int, int, str]]]:
    text = ""
    numbers: list[tuple[int, int, str]] = []
    for piece in pieces:
        if piece.label is not None:
            numbers.append((len(text), len(text) + len(piece.text), piece.label))
        text += piece.text
    # Tidy doubled spaces or articles the composition left, keeping number offsets valid.
    return text, numbers


_EMPTY_JOBS = [
    "run a federated learning job",
    "start a federated training run",
    "train a federated model",
    "launch a job with the default settings",
    "just run the defaults",
    "federated learning please",
    "kick off a federated run",
    "new federated job",
    "run fl with defaults",
    "train something federated, default config",
]


def _acceptable(chosen: dict[str, Any]) -> bool:
    """Whether JobSpec takes the request (a CSV job is checked against a placeholder path)."""
    expect = expected_values(chosen, {"hf": "bert-base-uncased", "path": "data.csv"})
    try:
        JobSpec.model_validate(nest_fields(expect))
    except ValidationError:
        return False
    return True


def positive_example(rng: random.Random, family: str) -> Example:
    terse = rng.random() < TERSE_SHARE
    verbosity = rng.choice(
        [0.25, 0.45, 0.6, 0.8, 1.0] if terse else [0.25, 0.45, 0.6, 0.8, 1.0, 1.0, 1.4, 2.0, 3.0]
    )
    chosen = sample_assignment(rng, verbosity, eval_family=family == "heldout")
    while not _acceptable(chosen):
        chosen = sample_assignment(rng, verbosity, eval_family=family == "heldout")
    if not chosen:
        prompt = rng.choice(_EMPTY_JOBS)
        pieces = add_noise([Piece(prompt)], rng)
        text, numbers = _join(pieces)
        return Example(text, True, _labels({}), numbers, [], {}, family)
    key_value = not terse and rng.random() < KEY_VALUE_SHARE
    phrases, strings = realize(rng, chosen, family, key_value, terse)
    pieces = add_noise(_assemble(phrases, rng, family, key_value, terse), rng)
    text, numbers = _join(pieces)
    return Example(
        prompt=text,
        job=True,
        labels=_labels(chosen),
        numbers=numbers,
        fixed=list(chosen.get("hpo.fixed", [])),
        expect=expected_values(chosen, strings),
        family=family,
    )


def _job_settings(rng: random.Random, family: str) -> str:
    """A few of a job's settings as a user lists them, for a negative that only mentions a job."""
    chosen: dict[str, Any] = {}
    while not chosen:
        chosen = sample_assignment(rng, rng.choice([0.25, 0.45, 0.6]), eval_family=family == "heldout")
    phrases, _ = realize(rng, chosen, family)
    joiner = rng.choice([", ", " ", " with ", " and "])
    return joiner.join(_join(phrase)[0] for phrase in phrases)


def _labels(chosen: dict[str, Any]) -> dict[str, str]:
    labels = {head: str(chosen.get(head, UNSET)) for head in ENUM_HEADS}
    if "name" in chosen:
        labels["name"] = chosen["name"]
    return labels


def generate(count: int, seed: int, family: str = "train", negative_share: float = 0.18) -> list[Example]:
    """`count` examples of a family, identical for the same seed."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}")
    rng = random.Random(f"{seed}:{family}")
    examples: list[Example] = []
    while len(examples) < count:
        if rng.random() < negative_share:
            text = negative_prompt(rng, family, lambda: _job_settings(rng, family))
            numbers = [(span.start, span.end, "none") for span in scan_numbers(text)]
            examples.append(Example(text, False, _labels({}), numbers, [], {}, family))
        else:
            example = positive_example(rng, family)
            if _numbers_read_back(example):
                examples.append(example)
    return examples


def _numbers_read_back(example: Example) -> bool:
    """Every number slot must be found by the scanner, after normalisation, as exactly one
    span that means the intended value."""
    prepared = prepare(example.prompt, None)
    mapping = offset_map(example.prompt, prepared.text)
    for start, end, label in example.numbers:
        lo, hi = mapping[start], mapping[end]
        covering = [span for span in prepared.spans if span.start < hi and span.end > lo]
        if label == "none":
            continue
        if len(covering) != 1 or covering[0].start != lo or covering[0].end != hi:
            return False
        expected = example.expect.get(label)
        value, _ = span_value(label, covering[0], example.expect.get("num_clients"))
        if (
            expected is None
            or value is None
            or abs(float(value) - float(expected)) > 1e-9 * max(1.0, abs(float(expected)))
        ):
            return False
    return True
