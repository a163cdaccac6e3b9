"""The model's files record each head's label vocabulary; loading refuses other labels, and the
recorded labels must stay valid spec values (otherwise the model must be retrained)."""

import json

import pytest

from intent_llm.fields import (
    ENUM_HEADS,
    NONE_LABEL,
    OTHER,
    UNSET,
    LabelMismatch,
    _annotation,
    check_head_labels,
    head_labels,
    literal_values,
)
from intent_llm.loading import MODEL_DIR
from intent_llm.model import NeuralPredictor
from jobspec import BUILTIN_MODELS, spec_field_names

RETRAIN = "retrain: python -m intent_llm train"
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


def test_the_shipped_model_records_the_labels_the_code_decodes():
    assert head_labels() == SHIPPED
    check_head_labels(SHIPPED, "the shipped model")


def test_loading_refuses_a_reordered_vocabulary_naming_the_head_and_values(tmp_path):
    labels = head_labels()
    first, second = labels["dataset"][1:3]
    labels["dataset"][1:3] = [second, first]
    with pytest.raises(LabelMismatch) as refused:
        NeuralPredictor.load(_model_dir_with_labels(tmp_path, labels))
    message = str(refused.value)
    assert "head 'dataset'" in message and "another order" in message
    assert f"1: model {second!r}, code {first!r}" in message
    assert "python -m intent_llm train" in message


def test_loading_refuses_a_changed_vocabulary_naming_the_differing_values(tmp_path):
    labels = head_labels()
    last_span = labels["spans"][-1]
    labels["algorithm"] = [label if label != "fedprox" else "fednova" for label in labels["algorithm"]]
    labels["spans"] = labels["spans"][:-1]
    with pytest.raises(LabelMismatch) as refused:
        NeuralPredictor.load(_model_dir_with_labels(tmp_path, labels))
    message = str(refused.value)
    assert "head 'algorithm'" in message and "['fednova'] which the code lacks" in message
    assert "['fedprox'] which the model lacks" in message
    assert "head 'spans'" in message and f"[{last_span!r}] which the model lacks" in message
    assert "head 'dataset'" not in message


def test_loading_refuses_a_config_without_labels(tmp_path):
    with pytest.raises(LabelMismatch, match="does not record its heads' label vocabularies"):
        NeuralPredictor.load(_model_dir_with_labels(tmp_path, None))
    labels = head_labels()
    labels["extra"] = ["a"]
    del labels["fixed"]
    with pytest.raises(LabelMismatch, match="head 'fixed' is not recorded.*head 'extra' is recorded"):
        check_head_labels(labels, "a model")


def test_the_check_runs_before_any_weights_are_read(tmp_path):
    labels = head_labels()
    labels["dp"] = ["unset", "off", "on"]
    # The copy has no member folders at all: the refusal comes before any weights are read.
    with pytest.raises(LabelMismatch, match="head 'dp'"):
        NeuralPredictor.load(_model_dir_with_labels(tmp_path, labels))


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
        f"(it allows {sorted(_spec_values(head))}): update ENUM_HEADS['{head}'] in intent_llm/fields.py "
        f"and {RETRAIN}"
    )


@pytest.mark.parametrize(
    ("head", "listed_as"), [("fixed", "FIXABLE_FIELDS"), ("spans", "NUMBER_FIELDS (SPAN_LABELS)")]
)
def test_every_recorded_field_label_is_still_a_spec_field(head, listed_as):
    known = spec_field_names()
    stale = [label for label in SHIPPED[head] if label != NONE_LABEL and label not in known]
    assert not stale, (
        f"intent_llm/model/config.json labels['{head}'] has {stale}, which are no longer JobSpec fields: "
        f"update {listed_as} in intent_llm/fields.py and {RETRAIN}"
    )


def test_the_intent_head_still_has_its_two_labels():
    assert SHIPPED["intent"] == ["refuse", "job"], f"the intent head's labels changed; {RETRAIN}"
