"""The model's files record each head's label vocabulary, and the parser reads the model's
outputs with it. Loading refuses only what would be mis-read: a recorded label the spec no
longer has, label counts that do not match the weights, or no recorded labels at all. Spec
values the shipped model cannot produce yet are listed in AWAITING_RETRAIN."""

import json

import numpy as np
import pytest
import torch

from intent_llm.decode import Predictions, decode
from intent_llm.featurize import prepare
from intent_llm.fields import (
    AWAITING_RETRAIN,
    ENUM_HEADS,
    NONE_LABEL,
    OTHER,
    RETRAIN,
    UNSET,
    LabelMismatch,
    _annotation,
    check_head_labels,
    code_vocabulary,
    head_labels,
    labels_awaiting_retrain,
    literal_values,
)
from intent_llm.loading import MODEL_DIR
from intent_llm.model import IntentNet, NeuralPredictor, check_head_shapes
from intent_llm.parser import IntentParser
from jobspec import BUILTIN_MODELS, JobSpec, spec_field_names

SHIPPED = json.loads((MODEL_DIR / "config.json").read_text(encoding="utf-8"))["labels"]


def _model_dir_with_labels(tmp_path, labels):
    """A copy of the shipped config.json (no weights: loading must refuse before reading them)."""
    config = json.loads((MODEL_DIR / "config.json").read_text(encoding="utf-8"))
    if labels is None:
        del config["labels"]
    else:
        config["labels"] = labels
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return tmp_path


def test_the_shipped_model_can_read_its_labels():
    assert check_head_labels(SHIPPED, "the shipped model") == {
        head: tuple(labels) for head, labels in SHIPPED.items()
    }


def test_spec_values_the_shipped_model_cannot_produce_are_listed_in_awaiting_retrain():
    awaiting = labels_awaiting_retrain(SHIPPED)
    assert awaiting == AWAITING_RETRAIN, (
        f"the shipped model (intent_llm/model/config.json) cannot produce {awaiting}; the parser "
        f"will never answer these values. Either retrain ({RETRAIN}) and empty AWAITING_RETRAIN, "
        "or list them in AWAITING_RETRAIN in intent_llm/fields.py "
        f"(expected AWAITING_RETRAIN = {awaiting!r})"
    )


def test_a_value_added_to_the_spec_awaits_a_retrain_and_loading_still_reads_the_rest():
    recorded = head_labels()
    recorded["algorithm"].remove("krum")  # as if "krum" were added to the spec after training
    recorded["spans"].remove("hpo.trials")
    vocabulary = check_head_labels(recorded, "a model")
    assert "krum" not in vocabulary["algorithm"]
    assert labels_awaiting_retrain(recorded) == {"algorithm": ("krum",), "spans": ("hpo.trials",)}


def test_a_reordered_vocabulary_is_accepted_in_the_models_order():
    recorded = head_labels()
    recorded["dataset"][1:3] = reversed(recorded["dataset"][1:3])
    assert check_head_labels(recorded, "a model")["dataset"] == tuple(recorded["dataset"])
    assert labels_awaiting_retrain(recorded) == {}


def _one_hot(labels, value):
    probs = np.full(len(labels), 0.01 / (len(labels) - 1))
    probs[list(labels).index(value)] = 0.99
    return probs


def test_decode_reads_outputs_with_the_recorded_vocabulary_not_the_codes_order():
    code = code_vocabulary()
    # The model's order differs from the code's and it lacks a value the code has.
    vocabulary = {head: tuple(reversed(labels)) for head, labels in code.items()}
    vocabulary["algorithm"] = tuple(label for label in vocabulary["algorithm"] if label != "krum")
    prepared = prepare("fedprox on cifar10 with 20 clients for 50 rounds", None)
    chosen = {"dataset": "cifar10", "algorithm": "fedprox"}
    predictions = Predictions(
        intent=_one_hot(vocabulary["intent"], "job"),
        heads={head: _one_hot(vocabulary[head], chosen.get(head, UNSET)) for head in ENUM_HEADS},
        spans=prepared.spans,
        span_probs=np.stack([_one_hot(vocabulary["spans"], name) for name in ("num_clients", "rounds")]),
        fixed=np.full(len(vocabulary["fixed"]), 0.1),
        labels=vocabulary,
    )
    # Read with the code's order, the same outputs would mean other values.
    assert vocabulary["dataset"].index("cifar10") != code["dataset"].index("cifar10")
    spec = decode(prepared.normalized, predictions).spec
    assert spec is not None
    JobSpec.model_validate(spec)
    assert (spec["dataset"], spec["algorithm"]) == ("cifar10", "fedprox")
    assert (spec["num_clients"], spec["rounds"]) == (20, 50)


def test_the_parser_decodes_with_the_predictors_labels():
    code = code_vocabulary()
    vocabulary = {**code, "dataset": tuple(reversed(code["dataset"]))}

    class Reordered:
        labels = vocabulary

        def predict(self, prepared):
            return {
                "intent": _one_hot(vocabulary["intent"], "job"),
                **{head: _one_hot(vocabulary[head], UNSET) for head in ENUM_HEADS},
                "dataset": _one_hot(vocabulary["dataset"], "mnist"),
                "fixed": np.full(len(vocabulary["fixed"]), 0.1),
                "spans": np.zeros((len(prepared.spans), len(vocabulary["spans"]))),
            }

    spec = IntentParser(None, Reordered()).parse("train on mnist").spec
    assert spec is not None and spec["dataset"] == "mnist"


def test_loading_refuses_a_label_the_spec_no_longer_has_naming_the_head_and_label(tmp_path):
    labels = head_labels()
    labels["algorithm"] = [label if label != "fedprox" else "fednova" for label in labels["algorithm"]]
    labels["spans"][-1] = "rounds_total"
    # The copy has no member folders at all: the refusal comes before any weights are read.
    with pytest.raises(LabelMismatch) as refused:
        NeuralPredictor.load(_model_dir_with_labels(tmp_path, labels))
    message = str(refused.value)
    assert "head 'algorithm' has ['fednova'], which the spec no longer has" in message
    assert "head 'spans' has ['rounds_total']" in message
    assert "head 'dataset'" not in message
    assert f"retrain: {RETRAIN}" in message


def test_loading_refuses_a_config_without_labels_or_with_other_heads(tmp_path):
    with pytest.raises(LabelMismatch, match="does not record its heads' label vocabularies"):
        NeuralPredictor.load(_model_dir_with_labels(tmp_path, None))
    labels = head_labels()
    labels["extra"] = ["a"]
    del labels["fixed"]
    with pytest.raises(LabelMismatch, match="head 'fixed' is not recorded.*head 'extra' is recorded"):
        check_head_labels(labels, "a model")
    labels = head_labels()
    labels["dp"] = ["unset", "on", "on", "off"]
    with pytest.raises(LabelMismatch, match=r"head 'dp' lists \['on'\] more than once"):
        check_head_labels(labels, "a model")


def test_loading_refuses_weights_whose_outputs_do_not_match_the_recorded_labels():
    heads = IntentNet(torch.nn.Identity()).head_state()  # sized by the code's labels
    check_head_shapes(heads, code_vocabulary(), "heads.safetensors")
    recorded = code_vocabulary()
    recorded["algorithm"] = tuple(label for label in recorded["algorithm"] if label != "krum")
    recorded["fixed"] = recorded["fixed"][:-1]
    with pytest.raises(LabelMismatch) as refused:
        check_head_shapes(heads, recorded, "heads.safetensors")
    message = str(refused.value)
    count = len(recorded["algorithm"])
    assert f"head 'algorithm' has {count + 1} outputs for {count} labels" in message
    assert "head 'fixed'" in message and "head 'dataset'" not in message and RETRAIN in message


def _spec_values(head):
    """The values the spec allows for an enum head's field, as the heads spell them."""
    if head == "dp":  # not a spec field: DP at defaults, or no DP
        return {"on", "off"}
    if head == "model":
        return set(BUILTIN_MODELS)
    if _annotation(head) is bool:
        return {"true", "false"}
    return set(literal_values(head))


@pytest.mark.parametrize("head", list(ENUM_HEADS))
def test_every_recorded_enum_label_is_still_a_spec_value(head):
    assert head in SHIPPED, f"intent_llm/model/config.json records no labels for head '{head}'; {RETRAIN}"
    recorded = [label for label in SHIPPED[head] if label not in (UNSET, OTHER, "hf")]
    stale = [label for label in recorded if label not in _spec_values(head)]
    assert not stale, (
        f"intent_llm/model/config.json labels['{head}'] has {stale}, which JobSpec no longer allows "
        f"(it allows {sorted(_spec_values(head))}): the shipped parser would refuse to load; "
        f"restore them in the spec or retrain: {RETRAIN}"
    )


@pytest.mark.parametrize(
    ("head", "listed_as"), [("fixed", "FIXABLE_FIELDS"), ("spans", "NUMBER_FIELDS (SPAN_LABELS)")]
)
def test_every_recorded_field_label_is_still_a_spec_field(head, listed_as):
    known = spec_field_names()
    stale = [label for label in SHIPPED[head] if label != NONE_LABEL and label not in known]
    assert not stale, (
        f"intent_llm/model/config.json labels['{head}'] has {stale}, which are no longer JobSpec fields: "
        f"restore them in {listed_as} (intent_llm/fields.py) and the spec, or retrain: {RETRAIN}"
    )


def test_the_intent_head_still_has_its_two_labels():
    assert SHIPPED["intent"] == ["refuse", "job"], f"the intent head's labels changed; {RETRAIN}"
