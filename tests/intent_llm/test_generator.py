"""The training-data generator: reproducible, valid, and the held-out family stays held out."""

import pytest

from intent_llm.decode import nest_fields
from intent_llm.featurize import build_corrector
from intent_llm.normalize import normalize_symbols
from intent_llm.numbers import scan_numbers
from intent_llm.training import phrasings
from intent_llm.training.dataset import to_samples
from intent_llm.training.generator import Realizer, _numbers_read_back, expected_values, generate
from intent_llm.training.vocabulary import domain_vocabulary
from intent_llm.values import span_value
from jobspec import JobSpec


@pytest.fixture(scope="module")
def train_examples():
    return generate(400, seed=7, family="train")


def test_same_seed_same_examples(train_examples):
    again = generate(400, seed=7, family="train")
    assert [e.prompt for e in again] == [e.prompt for e in train_examples]
    assert [e.prompt for e in generate(50, seed=8)] != [e.prompt for e in train_examples[:50]]


def test_examples_cover_jobs_and_refusals(train_examples):
    jobs = [e for e in train_examples if e.job]
    assert 0.75 < len(jobs) / len(train_examples) < 0.95
    assert any(len(e.expect) >= 12 for e in jobs), "long run-on prompts are generated"


def test_some_jobs_are_bare_lists_of_settings(train_examples):
    """People type "cifar10 resnet18 fedyogi 100 rounds": a job with no frame around it."""
    bare_lists = [e for e in train_examples if e.job and len(e.expect) >= 2 and len(e.prompt.split()) <= 8]
    assert len(bare_lists) >= 5


def test_settings_are_also_named_then_given_a_value():
    """ "<setting> set to n" is drawn for many fields, so the link words point at no field."""
    prompts = [e.prompt.lower() for e in generate(1500, seed=3, family="train") if e.job]
    linked = [p for p in prompts if " set to " in p]
    assert (
        len(
            {
                noun
                for noun in ("batch size", "learning rate", "rounds", "seed", "rank")
                for p in linked
                if noun in p
            }
        )
        >= 4
    )


def test_some_refusals_carry_a_jobs_settings_and_numbers(train_examples):
    """Reports on finished runs and questions mention settings; their numbers set nothing."""
    refusals = [e for e in train_examples if not e.job]
    with_numbers = [e for e in refusals if e.numbers]
    assert len(with_numbers) > len(refusals) // 4
    assert all(label == "none" for e in with_numbers for _, _, label in e.numbers)
    assert all(not e.expect for e in refusals)


def test_expected_specs_are_valid(train_examples):
    for example in train_examples:
        if example.job:
            JobSpec.model_validate(nest_fields(example.expect))


def test_every_labelled_number_reads_back(train_examples):
    assert all(_numbers_read_back(example) for example in train_examples)
    samples, dropped = to_samples(train_examples, build_corrector(domain_vocabulary()))
    assert dropped <= len(train_examples) // 100


def test_heldout_phrasings_never_appear_in_training(train_examples):
    heldout_only = [
        "the federation has",
        "rounds of communication",
        "epochs on-device",
        "mini-batching at",
        "proximal penalty",
        "dirichlet prior of",
        "bits per coordinate",
        "lora bottleneck",
        "as the seed",
        "candidate configurations",
    ]
    text = "\n".join(example.prompt.lower() for example in train_examples)
    for phrase in heldout_only:
        assert phrase not in text
    heldout = "\n".join(example.prompt.lower() for example in generate(400, seed=7, family="heldout"))
    assert sum(phrase in heldout for phrase in heldout_only) >= 5


def test_fractions_of_clients_become_counts():
    assert (
        expected_values({"num_clients": 50, "clients_per_round": ("share", 0.25)}, {})["clients_per_round"]
        == 13
    )
    assert expected_values({"clients_per_round": ("share", 0.01)}, {})["clients_per_round"] == 1


def test_number_renderings_scan_back_to_their_value():
    import random

    rng = random.Random(3)
    realizer = Realizer(rng, "train")
    cases: list[tuple[str, list[float]]] = [
        ("learning_rate", [1e-3, 3e-4, 0.05]),
        ("rounds", [1, 20, 250, 1000]),
        ("compression.ratio", [0.01, 0.1, 0.5]),
    ]
    for field, values in cases:
        for value in values:
            for _ in range(20):
                piece = realizer.number(field, value, "")
                spans = scan_numbers(normalize_symbols(piece.text))
                assert len(spans) == 1, piece.text
                assert span_value(field, spans[0], 10)[0] == pytest.approx(value), piece.text


def test_every_phrasing_table_has_both_families():
    for table in phrasings.NUMBER_PHRASES.values():
        assert table["train"] and table["heldout"]
    for values in phrasings.ENUM_SURFACES.values():
        for table in values.values():
            assert table["train"] and table["heldout"]
