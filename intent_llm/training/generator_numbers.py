"""Numbers written the way people write them, for the generated training prompts.

Part of the generator (generator.py): a count, a small rate, a real or a share rendered in
one of its usual forms -- digits, words, fractions, percentages, scientific notation --
drawn from the generator's `rng`.
"""

from __future__ import annotations

import random
from typing import TypeVar

T = TypeVar("T")


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
