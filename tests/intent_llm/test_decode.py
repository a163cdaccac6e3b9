"""Decoding predictions into a spec: confidence, vague phrases, implied settings, validation."""

import numpy as np
import pytest

from intent_llm.decode import Predictions, decode
from intent_llm.featurize import prepare
from intent_llm.fields import ENUM_HEADS, FIXABLE_FIELDS, INTENT_LABELS, SPAN_LABELS
from jobspec import JobSpec


def one_hot(labels, value, confidence=0.99):
    probs = np.full(len(labels), (1 - confidence) / (len(labels) - 1))
    probs[labels.index(value)] = confidence
    return probs


def predictions(prompt, heads=None, spans=None, job=True, fixed=(), job_confidence=0.99):
    """Predictions as if a model read `prompt`: heads by value, spans by field in order."""
    prepared = prepare(prompt, None)
    heads = heads or {}
    spans = spans or []
    assert len(spans) == len(prepared.spans), [s.text for s in prepared.spans]
    span_probs = (
        np.stack(
            [
                one_hot(SPAN_LABELS, *span) if isinstance(span, tuple) else one_hot(SPAN_LABELS, span)
                for span in spans
            ]
        )
        if spans
        else np.zeros((0, len(SPAN_LABELS)))
    )
    return prepared, Predictions(
        intent=one_hot(INTENT_LABELS, "job" if job else "refuse", job_confidence),
        heads={head: one_hot(labels, heads.get(head, "unset")) for head, labels in ENUM_HEADS.items()},
        spans=prepared.spans,
        span_probs=span_probs,
        fixed=np.array([0.9 if name in fixed else 0.1 for name in FIXABLE_FIELDS]),
    )


def run(prompt, **kwargs):
    prepared, preds = predictions(prompt, **kwargs)
    result = decode(prepared.normalized, preds)
    if result.spec is not None:
        JobSpec.model_validate(result.spec)  # every answer is a valid spec
    return result


def test_refusal():
    assert run("hello", job=False).error


def test_a_prompt_that_sets_no_field_needs_a_confident_job_answer():
    assert run("thanks, the run finished", job_confidence=0.8).error
    assert run("start a federated run", job_confidence=0.95).spec is not None
    assert run("train on mnist", heads={"dataset": "mnist"}, job_confidence=0.8).spec is not None


def test_counts_alone_need_a_confident_job_answer():
    golf = "book 20 rounds of golf for our 10 clients"
    assert run(golf, spans=["rounds", "num_clients"], job_confidence=0.8).error
    assert run(golf, spans=["rounds", "num_clients"], job_confidence=0.95).spec is not None
    mnist = "mnist, 20 rounds"
    assert run(mnist, heads={"dataset": "mnist"}, spans=["rounds"], job_confidence=0.8).spec is not None


def test_plain_non_iid_is_dirichlet_half_with_a_warning():
    result = run("non-iid please", heads={"partition.scheme": "dirichlet"})
    assert result.spec["partition"] == {"scheme": "dirichlet", "alpha": 0.5, "shards_per_client": None}
    assert "partition.alpha" in result.mentioned
    assert any(name == "partition.alpha" for name, _ in result.warnings)


def test_share_of_clients_rounds_half_up_against_num_clients():
    result = run("50 clients, 25% per round", spans=["num_clients", "clients_per_round"])
    assert result.spec["num_clients"] == 50 and result.spec["clients_per_round"] == 13


def test_low_confidence_values_become_warnings_and_defaults():
    result = run("maybe 30 rounds", spans=[("rounds", 0.25)])
    assert result.spec["rounds"] == 20
    assert any(name == "rounds" for name, _ in result.warnings)
    assert "rounds" not in result.mentioned


def test_values_breaking_a_rule_fall_back_with_a_warning():
    result = run("40 rounds, 5 clients, 8 per round", spans=["rounds", "num_clients", "clients_per_round"])
    assert result.spec["clients_per_round"] == 5  # 8 > 5 clients: refused, default (all)
    assert any(name == "clients_per_round" for name, _ in result.warnings)
    assert result.spec["rounds"] == 40


def test_implied_algorithms_come_from_the_spec():
    result = run("mu 0.1", spans=["proximal_mu"])
    assert result.spec["algorithm"] == "fedprox" and "algorithm" in result.mentioned
    result = run("server momentum 0.9", spans=["server_momentum"])
    assert result.spec["algorithm"] == "fedavgm"


def test_four_bit_quantisation_is_qsgd():
    result = run("4-bit quantisation", heads={"compression.method": "int8"}, spans=["compression.bits"])
    assert result.spec["compression"]["method"] == "qsgd" and result.spec["compression"]["bits"] == 4


def test_vague_differential_privacy_gets_documented_defaults():
    result = run("with differential privacy", heads={"dp": "on"})
    assert result.spec["dp"]["noise_multiplier"] == 1.0 and result.spec["dp"]["clip_norm"] == 1.0
    assert len(result.warnings) == 2


def test_path_means_csv_and_is_kept_verbatim():
    result = run("train an mlp on ./Data/Heart.csv", heads={"model": "mlp"})
    assert result.spec["dataset"] == "csv" and result.spec["dataset_path"] == "./Data/Heart.csv"


def test_a_named_checkpoint_beats_a_guess_of_the_built_in_encoder():
    prompt = "use my local transformers checkpoint in /models/tiny-roberta on ag_news"
    result = run(prompt, heads={"model": "minilm", "dataset": "ag_news"})
    assert result.spec["model"] == "hf:/models/tiny-roberta"


def test_model_without_dataset_picks_a_dataset_that_takes_it():
    result = run("fine-tune minilm", heads={"model": "minilm"})
    assert result.spec["dataset"] == "sst2" and result.spec["model"] == "minilm"
    assert any(name == "dataset" for name, _ in result.warnings)


def test_hpo_fixed_fields_and_default_budget():
    result = run("tune it, keep the dataset fixed", heads={"hpo.enabled": "true"}, fixed=("dataset",))
    assert result.spec["hpo"]["enabled"] and result.spec["hpo"]["trials"] == 20
    assert result.spec["hpo"]["fixed"] == ["dataset"]


@pytest.mark.parametrize("scheme", ["iid", "shards"])
def test_alpha_without_dirichlet_is_dropped(scheme):
    result = run("alpha 0.3", heads={"partition.scheme": scheme}, spans=["partition.alpha"])
    assert result.spec["partition"]["alpha"] is None


def test_noise_written_as_a_multiple_of_the_clip_norm_is_the_noise_multiplier():
    result = run(
        "noise at 0.8x the clip norm, clip norm 0.5",
        spans=["dp.noise_multiplier", "dp.clip_norm"],
    )
    assert (result.spec["dp"]["noise_multiplier"], result.spec["dp"]["clip_norm"]) == (0.8, 0.5)
    tenfold = run("top-k 10x", heads={"compression.method": "topk"}, spans=["compression.ratio"])
    assert tenfold.spec["compression"]["ratio"] == 0.1  # elsewhere a factor is not a value


def test_a_number_whose_field_is_taken_moves_to_its_next_likeliest_field():
    prepared, preds = predictions("clients=20 rounds=60", spans=["rounds", "rounds"])
    preds.span_probs[0] = 0.0
    preds.span_probs[0, SPAN_LABELS.index("rounds")] = 0.55
    preds.span_probs[0, SPAN_LABELS.index("num_clients")] = 0.4
    preds.span_probs[0, SPAN_LABELS.index("none")] = 0.05
    result = decode(prepared.normalized, preds)
    assert result.spec is not None
    assert (result.spec["num_clients"], result.spec["rounds"]) == (20, 60)
    assert any("read it as num_clients" in message for _, message in result.warnings)


def test_two_numbers_for_one_field_keep_the_more_confident_when_nothing_else_fits():
    result = run("rounds 20 rounds 60", spans=[("rounds", 0.6), ("rounds", 0.9)])
    assert result.spec["rounds"] == 60
    assert any("several numbers" in message for _, message in result.warnings)
