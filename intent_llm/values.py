"""From a written number to the value of the field the model assigned it to.

The same number means different things in different fields: "10%" of clients per
round is a count (10% of 100 clients = 10), "10%" top-k is a ratio (0.1), "10x"
compression keeps a tenth, and "0.8x the clip norm" of noise is a noise multiplier of 0.8.
Whole-number fields refuse shares and decimals.
"""

from __future__ import annotations

import math

from jobspec import JobSpec

from .fields import INT_FIELDS
from .numbers import NumberSpan

DEFAULT_NUM_CLIENTS: int = JobSpec.model_fields["num_clients"].default
# Fields whose value is itself a share, so "10%" means 0.1.
SHARE_FIELDS = frozenset({"compression.ratio", "robust.trim_fraction", "server_momentum"})


def round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def clients_from_share(share: float, num_clients: int) -> int:
    """A share of the clients per round as a count: round-half-up, at least one."""
    return max(1, round_half_up(share * num_clients))


def span_value(
    field: str, span: NumberSpan, num_clients: int | None
) -> tuple[float | int | None, str | None]:
    """(value, None) or (None, why the number cannot set this field)."""
    if field == "clients_per_round":
        share = span.proportion if (span.percent or span.fraction or span.decimal) else None
        if share is not None:
            if not 0 < share <= 1:
                return None, f"'{span.text}' is not a share of the clients between 0 and 1"
            return clients_from_share(share, num_clients or DEFAULT_NUM_CLIENTS), None
        if span.is_whole:
            return int(span.value), None
        return None, f"'{span.text}' is not a number of clients"
    if field in INT_FIELDS:
        if span.is_whole:
            return int(span.value), None
        return None, f"'{span.text}' is not a whole number"
    if field == "compression.ratio":
        if span.times:
            return (
                (1 / span.value, None)
                if span.value >= 1
                else (None, f"'{span.text}' is not a compression factor")
            )
        share = span.proportion
        if share is None:
            return None, f"'{span.text}' is not a fraction of the update to keep"
        return share, None
    if span.times and field != "dp.noise_multiplier":  # "noise at 0.8x the clip" is the multiplier itself
        return None, f"'{span.text}' is a factor, not a value"
    if span.percent:
        return span.value / 100, None
    if field in SHARE_FIELDS and span.fraction:
        return span.value, None
    return span.value, None
