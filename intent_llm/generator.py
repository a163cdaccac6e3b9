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
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError

from jobspec import JobSpec

from . import phrasings as P
from .decode import (
    DEFAULT_DP_CLIP_NORM,
    DEFAULT_DP_NOISE,
    DEFAULT_HPO_TRIALS,
    VAGUE_ALPHA,
    VAGUE_SHARDS,
    nest_fields,
)
from .featurize import offset_map, prepare
from .fields import ENUM_HEADS, UNSET
from .negatives import negative_prompt
from .numbers import scan_numbers
from .templates import Segment, Slot, compile_template
from .values import DEFAULT_NUM_CLIENTS, clients_from_share, span_value

FAMILIES = ("train", "heldout")
KEY_VALUE_SHARE = 0.08  # prompts written wholly as key=value pairs ("clients=20 rounds=60 lr=1e-3")
# prompts that are nothing but a few settings, the way people type a search ("mnist fedavg",
# "cifar10 resnet18 fedyogi 100 rounds"): no frame, no closing, the shortest wording
TERSE_SHARE = 0.08
SETTING_SHARE = 0.15  # numbers said as "<setting> <link> n" ("the batch size set to 64"), training only
T = TypeVar("T")


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


# --- numbers in words -------------------------------------------------------------------

_UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORDINALS = {
    2: "half",
    3: "third",
    4: "quarter",
    5: "fifth",
    6: "sixth",
    8: "eighth",
    10: "tenth",
    20: "twentieth",
    100: "hundredth",
}


def int_words(number: int, rng: random.Random) -> str:
    if number < 20:
        return _UNITS[number]
    if number < 100:
        tens, unit = divmod(number, 10)
        if not unit:
            return _TENS[tens]
        return _TENS[tens] + rng.choice(["-", " "]) + _UNITS[unit]
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        head = (
            ("a hundred" if rng.random() < 0.4 else "one hundred")
            if hundreds == 1
            else _UNITS[hundreds] + " hundred"
        )
        if not rest:
            return head
        return head + rng.choice([" and ", " "]) + int_words(rest, rng)
    thousands, rest = divmod(number, 1000)
    head = "a thousand" if thousands == 1 and rng.random() < 0.4 else int_words(thousands, rng) + " thousand"
    return head if not rest else head + " " + int_words(rest, rng)


def _decimal(value: float) -> str:
    text = f"{value:.10f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _mantissa_exponent(value: float) -> tuple[str, int]:
    exponent = 0
    mantissa = value
    while mantissa < 1:
        mantissa *= 10
        exponent -= 1
    text = f"{mantissa:.6g}"
    return text, exponent


_SUPER = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def render_count(value: int, rng: random.Random, hint: str = "") -> str:
    if hint == "digits":
        return str(value)
    options: list[tuple[float, str]] = [(0.66, str(value))]
    if value <= 1000:
        options.append((0.2 if hint != "word" else 5.0, int_words(value, rng)))
    if value >= 1000:
        options.append((0.06, f"{value:,}"))
    if value >= 1000 and value % 1000 == 0:
        options.append((0.05, f"{value // 1000}{rng.choice('kK')}"))
    if value == 12:
        options.append((0.08, "a dozen"))
    return _weighted(options, rng)


def render_small(value: float, rng: random.Random, hint: str = "") -> str:
    """Learning rates, mu, delta: 0.001, .001, 1e-3, 10^-3, 1x10^-3, ten to the minus three."""
    decimal = _decimal(value)
    options: list[tuple[float, str]] = [(0.4, decimal)]
    if value < 1:
        options.append((0.1, decimal[1:]))
    if value < 0.1:
        mantissa, exponent = _mantissa_exponent(value)
        sci = f"{mantissa}e{exponent}"
        options += [
            (0.22, sci),
            (0.03, f"{mantissa}E{exponent}"),
            (0.02, f"{mantissa}e-0{-exponent}" if -9 <= exponent < 0 else sci),
            (0.03, f"{mantissa}{rng.choice(['x', ' x ', '×', ' × ', '*'])}10^{exponent}"),
            (0.02, f"{mantissa}×10{str(exponent).translate(_SUPER)}"),
        ]
        if mantissa == "1":
            options += [
                (0.04, f"10^{exponent}"),
                (0.02, f"10**{exponent}"),
                (0.02, f"10{str(exponent).translate(_SUPER)}"),
                (0.03, f"ten to the minus {_UNITS[-exponent]}" if -exponent < 20 else sci),
                (0.01, f"10 to the minus {-exponent}"),
            ]
    if value >= 0.01 and len(decimal) <= 4:
        options.append((0.04, _point_words(value, rng)))
    return _weighted(options, rng)


def _point_words(value: float, rng: random.Random) -> str:
    whole, _, digits = _decimal(value).partition(".")
    head = "" if whole == "0" and rng.random() < 0.4 else int_words(int(whole), rng) + " "
    if digits == "0":
        return int_words(int(whole), rng)
    return head + "point " + " ".join(_UNITS[int(d)] for d in digits)


def render_real(value: float, rng: random.Random, hint: str = "") -> str:
    """Concentrations, noise, clip norms, momentum: 0.3, .3, 1.0, 1, one, one point five."""
    if hint == "dec":
        return _decimal(value)
    options: list[tuple[float, str]] = [(0.6, _decimal(value))]
    if value < 1:
        options.append((0.15, _decimal(value)[1:]))
    if float(value).is_integer():
        options += [(0.2, str(int(value))), (0.1, int_words(int(value), rng))]
    elif len(_decimal(value)) <= 4:
        options.append((0.06, _point_words(value, rng)))
    if value < 0.01:
        return render_small(value, rng)
    return _weighted(options, rng)


def render_share(value: float, rng: random.Random, hint: str = "") -> str:
    """A share: 0.1, .1, 10%, ten percent, 10 per cent, 1/10, a tenth, one in ten."""
    percent = round(value * 100, 6)
    pct = f"{percent:g}"
    percent_forms = [f"{pct}%", f"{pct} %", f"{pct} percent", f"{pct} per cent", f"{pct}pct"]
    if float(percent).is_integer() and percent <= 100:
        percent_forms += [int_words(int(percent), rng) + " percent"] * 2
    decimal_forms = [_decimal(value), _decimal(value)[1:] if value < 1 else _decimal(value)]
    fraction_forms: list[str] = []
    inverse = 1 / value
    if abs(inverse - round(inverse)) < 1e-9 and 2 <= round(inverse) <= 100:
        k = round(inverse)
        fraction_forms.append(f"1/{k}")
        if k in _ORDINALS:
            fraction_forms += [f"a {_ORDINALS[k]}", f"one {_ORDINALS[k]}"] if k != 2 else ["half", "a half"]
        if k <= 20:
            fraction_forms += [f"one in {int_words(k, rng)}", f"1 in {k}"]
    if abs(value - 0.75) < 1e-9:
        fraction_forms += ["three quarters", "3/4"]
    if hint == "pct":
        return rng.choice(percent_forms)
    if hint == "dec":
        return rng.choice(decimal_forms)
    if hint == "frac" and fraction_forms:
        return rng.choice(fraction_forms)
    options = [(0.45 / len(percent_forms), form) for form in percent_forms]
    options += [(0.35 / len(decimal_forms), form) for form in decimal_forms]
    options += [(0.2 / len(fraction_forms), form) for form in fraction_forms]
    return _weighted(options, rng)


def _weighted(options: list[tuple[float, T]], rng: random.Random) -> T:
    total = sum(weight for weight, _ in options)
    pick = rng.random() * total
    for weight, text in options:
        pick -= weight
        if pick <= 0:
            return text
    return options[-1][1]


RENDERERS = {
    "count": render_count,
    "small": render_small,
    "real": render_real,
    "share": render_share,
}
FIELD_KIND = {
    "num_clients": "count",
    "clients_per_round": "count",
    "client_fraction": "share",
    "rounds": "count",
    "local_epochs": "count",
    "batch_size": "count",
    "learning_rate": "small",
    "server_learning_rate": "small",
    "server_momentum": "real",
    "proximal_mu": "small",
    "partition.alpha": "real",
    "partition.shards_per_client": "count",
    "compression.ratio": "share",
    "compression.bits": "count",
    "lora.rank": "count",
    "lora.alpha": "count",
    "robust.trim_fraction": "share",
    "dp.noise_multiplier": "real",
    "dp.clip_norm": "real",
    "dp.delta": "small",
    "seed": "count",
    "hpo.trials": "count",
}

# --- what a user asks for ------------------------------------------------------------------

_WEIGHTED_VALUES: dict[str, list[tuple[float, Any]]] = {
    "dataset": [
        (0.12, "digits"),
        (0.2, "mnist"),
        (0.15, "fashion_mnist"),
        (0.16, "cifar10"),
        (0.08, "cifar100"),
        (0.08, "sst2"),
        (0.07, "ag_news"),
        (0.09, "csv"),
        (0.05, "other"),
    ],
    "algorithm": [
        (0.2, "fedavg"),
        (0.14, "fedprox"),
        (0.07, "fedavgm"),
        (0.07, "fedadam"),
        (0.05, "fedyogi"),
        (0.05, "fedadagrad"),
        (0.07, "scaffold"),
        (0.06, "krum"),
        (0.06, "median"),
        (0.07, "trimmed_mean"),
        (0.06, "flora"),
        (0.04, "other"),
    ],
}
_VALUES: dict[str, list[Any]] = {
    "num_clients": [
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        10,
        10,
        12,
        15,
        16,
        20,
        20,
        24,
        25,
        30,
        32,
        40,
        50,
        50,
        60,
        64,
        75,
        80,
        100,
        100,
        128,
        200,
        250,
        500,
        1000,
    ],
    "rounds": [
        1,
        2,
        3,
        5,
        10,
        10,
        15,
        20,
        20,
        25,
        30,
        40,
        50,
        50,
        60,
        75,
        100,
        100,
        120,
        150,
        200,
        250,
        300,
        500,
        1000,
    ],
    "local_epochs": [1, 1, 1, 2, 2, 3, 3, 4, 5, 5, 10],
    "batch_size": [8, 10, 16, 16, 20, 32, 32, 50, 64, 64, 100, 128, 256, 512],
    "learning_rate": [
        0.5,
        0.2,
        0.1,
        0.05,
        0.03,
        0.02,
        0.01,
        0.01,
        0.005,
        0.003,
        0.002,
        0.001,
        0.001,
        5e-4,
        3e-4,
        2e-4,
        1e-4,
        5e-5,
        3e-5,
        2e-5,
        1e-5,
    ],
    "server_learning_rate": [2.0, 1.0, 1.0, 0.5, 0.3, 0.1, 0.05, 0.03, 0.01, 0.003, 0.001],
    "server_momentum": [0.9, 0.9, 0.95, 0.99, 0.5, 0.7, 0.8, 0.6],
    "proximal_mu": [0.0001, 0.001, 0.005, 0.01, 0.01, 0.05, 0.1, 0.5, 1.0],
    "partition.alpha": [0.01, 0.05, 0.1, 0.1, 0.2, 0.3, 0.5, 0.5, 1.0, 2.0, 5.0, 10.0, 100.0],
    "partition.shards_per_client": [1, 2, 2, 2, 3, 4, 5, 10],
    "compression.ratio": [0.001, 0.005, 0.01, 0.01, 0.02, 0.05, 0.1, 0.1, 0.2, 0.25, 0.3, 0.5],
    "compression.bits": [1, 2, 2, 3, 4, 4, 6, 12, 16],  # 8 bits is int8
    "lora.rank": [1, 2, 4, 4, 8, 8, 16, 32, 64],
    "lora.alpha": [1, 2, 4, 8, 16, 16, 32, 32, 64, 128],
    "robust.trim_fraction": [0.05, 0.1, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4],
    "dp.noise_multiplier": [0.3, 0.5, 0.7, 0.8, 1.0, 1.0, 1.1, 1.2, 1.5, 2.0, 3.0],
    "dp.clip_norm": [0.1, 0.5, 1.0, 1.0, 2.0, 5.0, 10.0],
    "dp.delta": [1e-5, 1e-5, 1e-6, 1e-4, 1e-7],
    "seed": [0, 1, 2, 3, 7, 13, 42, 42, 123, 1234, 2024, 31337, 99],
    "hpo.trials": [5, 10, 16, 20, 25, 30, 40, 50, 64, 100, 200],
    "client_fraction": [0.01, 0.05, 0.1, 0.1, 0.2, 0.25, 0.3, 0.5, 0.5, 1.0],
}
_TIMES = [2, 4, 5, 10, 10, 20, 50, 100]
_TEXT = ("sst2", "ag_news")


def _pick(rng: random.Random, key: str) -> Any:
    if key in _WEIGHTED_VALUES:
        return _weighted(_WEIGHTED_VALUES[key], rng)
    value = rng.choice(_VALUES[key])
    if key in ("num_clients", "rounds") and rng.random() < 0.25:
        value = rng.randint(2, 300)
    if key == "seed" and rng.random() < 0.3:
        value = rng.randint(0, 99999)
    return value


def sample_assignment(rng: random.Random, verbosity: float, eval_family: bool) -> dict[str, Any]:
    """A consistent set of choices a user might state; keys are heads and number fields."""

    def want(probability: float) -> bool:
        return rng.random() < min(0.95, probability * verbosity)

    chosen: dict[str, Any] = {}
    if want(0.6):
        chosen["dataset"] = _pick(rng, "dataset")
    dataset = chosen.get("dataset")
    if want(0.4):
        if dataset in ("digits", "mnist", "fashion_mnist"):
            chosen["model"] = rng.choice(["cnn", "mlp"])
        elif dataset in ("cifar10", "cifar100"):
            chosen["model"] = rng.choice(["cnn", "resnet18", "resnet18"])
        elif dataset in _TEXT:
            chosen["model"] = rng.choice(["minilm", "minilm", "hf"])
        elif dataset == "csv":
            chosen["model"] = "mlp" if eval_family else rng.choice(["mlp", "minilm", "hf"])
        elif dataset == "other":
            chosen["model"] = rng.choice(["mlp", "cnn", "resnet18", "minilm"])
        else:
            chosen["model"] = rng.choice(["mlp", "cnn", "resnet18", "minilm", "hf"])
    if dataset is None and chosen.get("model") in ("minilm", "hf") and rng.random() < 0.7:
        chosen["dataset"] = rng.choice(_TEXT)
    if want(0.5):
        algorithm = _pick(rng, "algorithm")
        if algorithm == "flora" and chosen.get("model") not in ("minilm", "hf"):
            algorithm = "fedavg"
        chosen["algorithm"] = algorithm
    if want(0.6):
        chosen["num_clients"] = _pick(rng, "num_clients")
    clients = chosen.get("num_clients", DEFAULT_NUM_CLIENTS)
    if want(0.3):
        if rng.random() < 0.5 and clients >= 2:
            chosen["clients_per_round"] = ("count", rng.randint(1, max(1, min(clients, 100) - 1)))
        else:
            chosen["clients_per_round"] = ("share", rng.choice(_VALUES["client_fraction"]))
    for name, probability in (
        ("rounds", 0.55),
        ("local_epochs", 0.35),
        ("batch_size", 0.3),
        ("learning_rate", 0.35),
    ):
        if want(probability):
            chosen[name] = _pick(rng, name)
    if want(0.3):
        chosen["optimizer"] = rng.choice(["sgd", "adam", "adamw"])
    if want(0.35):
        scheme = rng.choice(["iid", "dirichlet", "dirichlet", "shards"])
        chosen["partition.scheme"] = scheme
        if scheme == "dirichlet" and rng.random() < 0.7:
            chosen["partition.alpha"] = _pick(rng, "partition.alpha")
        if scheme == "shards" and rng.random() < 0.75:
            chosen["partition.shards_per_client"] = _pick(rng, "partition.shards_per_client")
    if want(0.25):
        method = rng.choice(["none", "topk", "topk", "int8", "qsgd", "qsgd"])
        chosen["compression.method"] = method
        if method == "topk" and rng.random() < 0.7:
            chosen["compression.ratio"] = (
                ("times", rng.choice(_TIMES)) if rng.random() < 0.12 else _pick(rng, "compression.ratio")
            )
        if method == "qsgd" and rng.random() < 0.75:
            chosen["compression.bits"] = _pick(rng, "compression.bits")
        if method != "none" and rng.random() < 0.25:
            chosen["compression.error_feedback"] = rng.choice(["true", "false"])
    elif want(0.02):
        chosen["compression.error_feedback"] = rng.choice(["true", "false"])
    if want(0.2):
        chosen["selection"] = rng.choice(["random", "round_robin", "oort", "power_of_choice", "deadline"])
    text_job = (
        chosen.get("model") in ("minilm", "hf")
        or chosen.get("dataset") in _TEXT
        or chosen.get("algorithm") == "flora"
    )
    if want(0.5 if text_job else 0.03):
        chosen["lora.rank"] = _pick(rng, "lora.rank")
    if want(0.3 if text_job else 0.02):
        chosen["lora.alpha"] = _pick(rng, "lora.alpha")
    algorithm = chosen.get("algorithm")
    if want(0.6 if algorithm == "fedprox" else 0.05 if algorithm is None else 0):
        chosen["proximal_mu"] = _pick(rng, "proximal_mu")
    if want(0.45 if algorithm in ("fedadam", "fedyogi", "fedadagrad") else 0.1):
        chosen["server_learning_rate"] = _pick(rng, "server_learning_rate")
    if want(0.6 if algorithm == "fedavgm" else 0.04 if algorithm is None else 0):
        chosen["server_momentum"] = _pick(rng, "server_momentum")
    if want(0.5 if algorithm in ("trimmed_mean", "krum") else 0.02):
        chosen["robust.trim_fraction"] = _pick(rng, "robust.trim_fraction")
    if want(0.12):
        numbers = rng.random() < 0.75
        if numbers:
            chosen["dp.noise_multiplier"] = _pick(rng, "dp.noise_multiplier")
            chosen["dp.clip_norm"] = _pick(rng, "dp.clip_norm")
            if rng.random() < 0.35:
                chosen["dp.delta"] = _pick(rng, "dp.delta")
        if not numbers or rng.random() < 0.4:
            chosen["dp"] = "on" if numbers or rng.random() < 0.85 else "off"
    if want(0.15):
        chosen["seed"] = _pick(rng, "seed")
    # Training over-samples searches that pin fields, the hardest part of a prompt to read; the
    # held-out family keeps its mix of requests, so its scores stay comparable between models.
    if want(0.12 if eval_family else 0.15):
        if rng.random() < 0.9:
            chosen["hpo.enabled"] = "true"
            if rng.random() < 0.8:
                chosen["hpo.trials"] = _pick(rng, "hpo.trials")
            if rng.random() < 0.5:
                chosen["hpo.objective"] = rng.choice(["accuracy", "loss"])
            if rng.random() < (0.7 if eval_family else 0.8):
                chosen["hpo.fixed"] = rng.sample(sorted(P.FIELD_NAMES), rng.choice([1, 1, 2, 2, 3, 3, 4]))
        else:
            chosen["hpo.enabled"] = "false"
    if want(0.05):
        chosen["name"] = rng.choice(P.NAMES["heldout" if eval_family and rng.random() < 0.5 else "train"])
    return chosen


def expected_values(chosen: dict[str, Any], strings: dict[str, str]) -> dict[str, Any]:
    """The dotted fields (and values) the parser must produce for this request."""
    expect: dict[str, Any] = {}
    clients = chosen.get("num_clients", DEFAULT_NUM_CLIENTS)
    for key, value in chosen.items():
        if key == "dp":
            if value == "off":
                expect["dp.noise_multiplier"] = None
                expect["dp.clip_norm"] = None
            continue
        if key in ("hpo.enabled", "compression.error_feedback"):
            expect[key] = value == "true"
        elif key == "clients_per_round":
            kind, amount = value
            expect[key] = amount if kind == "count" else clients_from_share(amount, clients)
        elif key == "compression.ratio" and isinstance(value, tuple):
            expect[key] = 1 / value[1]
        elif key == "model" and value == "hf":
            expect[key] = "hf:" + strings["hf"]
        elif key in ("dataset", "algorithm") and value == "other":
            continue  # the parser warns and keeps the default
        else:
            expect[key] = value
    if chosen.get("dataset") == "csv":
        expect["dataset_path"] = strings["path"]
    if "proximal_mu" in chosen and "algorithm" not in chosen:
        expect["algorithm"] = "fedprox"
    if "server_momentum" in chosen and "algorithm" not in chosen:
        expect["algorithm"] = "fedavgm"
    if chosen.get("partition.scheme") == "dirichlet" and "partition.alpha" not in chosen:
        expect["partition.alpha"] = VAGUE_ALPHA
    if chosen.get("partition.scheme") == "shards" and "partition.shards_per_client" not in chosen:
        expect["partition.shards_per_client"] = VAGUE_SHARDS
    if chosen.get("compression.method") == "int8":
        expect["compression.bits"] = 8
    if chosen.get("dp") == "on":
        expect.setdefault("dp.noise_multiplier", DEFAULT_DP_NOISE)
        expect.setdefault("dp.clip_norm", DEFAULT_DP_CLIP_NORM)
    if "dp.noise_multiplier" in chosen and "dp.clip_norm" not in chosen:
        expect["dp.clip_norm"] = DEFAULT_DP_CLIP_NORM
    if chosen.get("hpo.enabled") == "true" and "hpo.trials" not in chosen:
        expect["hpo.trials"] = DEFAULT_HPO_TRIALS
    if "hpo.trials" in chosen:
        expect["hpo.enabled"] = True
    return expect


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
