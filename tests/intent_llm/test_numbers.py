"""The deterministic number scanner reads every written form of a number."""

import pytest

from intent_llm.numbers import scan_numbers
from intent_llm.values import span_value


def only(text):
    spans = scan_numbers(text)
    assert len(spans) == 1, [s.text for s in spans]
    return spans[0]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("40 clients", 40),
        ("1,000 clients", 1000),
        ("2k rounds", 2000),
        ("twenty clients", 20),
        ("twenty-five rounds", 25),
        ("twenty five rounds", 25),
        ("a hundred rounds", 100),
        ("hundred clients", 100),
        ("two hundred and fifty samples", 250),
        ("three thousand rounds", 3000),
        ("a dozen clients", 12),
        ("a single epoch", 1),
    ],
)
def test_whole_numbers_in_digits_and_words(text, value):
    span = only(text)
    assert span.value == value and span.is_whole


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("lr 0.01", 0.01),
        ("alpha .3", 0.3),
        ("mu .05", 0.05),
        ("lr 1e-3", 1e-3),
        ("lr 2e-4", 2e-4),
        ("delta 1E-5", 1e-5),
        ("lr 1.5e-5", 1.5e-5),
        ("lr 10^-3", 1e-3),
        ("lr 10**-2", 1e-2),
        ("lr 1x10^-4", 1e-4),
        ("lr 3 x 10^-5", 3e-5),
        ("lr ten to the minus three", 1e-3),
        ("lr 10 to the minus 4", 1e-4),
        ("lr ten to the -2", 1e-2),
        ("lr zero point zero one", 0.01),
        ("mu point five", 0.5),
    ],
)
def test_decimals_and_scientific_notation(text, value):
    span = only(text)
    assert span.value == pytest.approx(value, rel=1e-12) and span.decimal


@pytest.mark.parametrize(
    ("text", "share"),
    [
        ("10% of clients", 0.1),
        ("10 % of clients", 0.1),
        ("ten percent of clients", 0.1),
        ("20 per cent", 0.2),
        ("30 pct", 0.3),
        ("1/5 of the clients", 0.2),
        ("a fifth of the clients", 0.2),
        ("one in five clients", 0.2),
        ("1 in 10 clients", 0.1),
        ("half the clients", 0.5),
        ("two thirds of them", 2 / 3),
        ("three quarters of them", 0.75),
        ("one-fifth of them", 0.2),
        ("a quarter of them", 0.25),
        ("client fraction 0.1", 0.1),
    ],
)
def test_percentages_and_fractions(text, share):
    assert only(text).proportion == pytest.approx(share)


def test_multiplier():
    span = only("10x compression")
    assert span.times and span.value == 10


@pytest.mark.parametrize(
    "text",
    [
        "cifar10",
        "cifar-10",
        "cifar 100",
        "resnet18",
        "resnet-18",
        "int8",
        "MiniLM-L6-v2",
        "sst-2",
        "fp16",
        "python 3.11",
    ],
)
def test_digits_inside_names_are_not_numbers(text):
    assert scan_numbers(text) == []


def test_protected_regions_are_skipped():
    text = "data in ./data/2024/run7.csv with 5 clients"
    start = text.index("./")
    spans = scan_numbers(text, [(start, start + len("./data/2024/run7.csv"))])
    assert [s.value for s in spans] == [5]


def test_glued_shorthands_still_read():
    assert [s.value for s in scan_numbers("r8 lr0.01 mu0.1 bs32")] == [8, 0.01, 0.1, 32]


def test_five_of_twenty_is_two_counts_not_a_share():
    assert [s.value for s in scan_numbers("sample 5 of 20 clients")] == [5, 20]


def test_unicode_exponents_after_normalisation():
    from intent_llm.normalize import normalize_symbols

    assert only(normalize_symbols("lr 3×10⁻⁴")).value == pytest.approx(3e-4)
    assert only(normalize_symbols("μ = 0.01")).value == 0.01


@pytest.mark.parametrize(
    ("field", "text", "clients", "value"),
    [
        ("clients_per_round", "10%", 100, 10),
        ("clients_per_round", "0.25", 10, 3),  # round half up: 2.5 -> 3
        ("clients_per_round", "one in twenty", 10, 1),  # at least one
        ("clients_per_round", "1.0", 40, 40),
        ("clients_per_round", "5", 40, 5),
        ("compression.ratio", "1%", 10, 0.01),
        ("compression.ratio", "10x", 10, 0.1),
        ("robust.trim_fraction", "10%", 10, 0.1),
        ("learning_rate", "1e-3", 10, 0.001),
        ("rounds", "twenty", 10, 20),
    ],
)
def test_field_conversions(field, text, clients, value):
    converted, problem = span_value(field, only(text), clients)
    assert problem is None and converted == pytest.approx(value)


def test_whole_number_fields_refuse_shares():
    converted, problem = span_value("rounds", only("10%"), 10)
    assert converted is None and problem is not None and "whole number" in problem
