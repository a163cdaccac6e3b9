"""The ensemble: members' probabilities are averaged, and members can be scored alone."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from intent_llm.featurize import prepare
from intent_llm.loading import MODEL_DIR
from intent_llm.model import HEADS, IntentNet, NeuralPredictor, average_outputs, load_tokenizer


def test_average_outputs_averages_every_key_elementwise():
    first = {"intent": np.array([0.9, 0.1]), "spans": np.array([[1.0, 0.0], [0.2, 0.8]])}
    second = {"intent": np.array([0.3, 0.7]), "spans": np.array([[0.0, 1.0], [0.4, 0.6]])}
    averaged = average_outputs([first, second])
    np.testing.assert_allclose(averaged["intent"], [0.6, 0.4])
    np.testing.assert_allclose(averaged["spans"], [[0.5, 0.5], [0.3, 0.7]])


class _Encoder(torch.nn.Module):
    """A stand-in encoder whose states are a fixed function of the token ids."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(40000, 384)
        torch.nn.init.normal_(self.embedding.weight, std=scale)

    def forward(self, input_ids, attention_mask):
        return SimpleNamespace(last_hidden_state=self.embedding(input_ids))


def test_predictor_averages_its_members_probabilities():
    torch.manual_seed(0)
    tokenizer = load_tokenizer()
    nets = [IntentNet(_Encoder(scale)) for scale in (0.5, 2.0)]
    prepared = prepare("fedavg on mnist, 20 clients for 50 rounds", None)
    alone = [NeuralPredictor([net], tokenizer).predict(prepared) for net in nets]
    together = NeuralPredictor(nets, tokenizer).predict(prepared)
    assert set(together) == set(HEADS) | {"fixed", "spans"}
    assert together["spans"].shape == (len(prepared.spans), alone[0]["spans"].shape[1]) and prepared.spans
    for key in together:
        np.testing.assert_allclose(together[key], (alone[0][key] + alone[1][key]) / 2, rtol=1e-6)
    assert not np.allclose(alone[0]["intent"], alone[1]["intent"])  # the members do differ


def test_shipped_model_names_its_members_and_refuses_unknown_ones():
    config = json.loads((MODEL_DIR / "config.json").read_text(encoding="utf-8"))
    assert config["training"]["members"] == len(config["members"])
    for name in config["members"]:
        assert (MODEL_DIR / name / "adapter.safetensors").is_file()
        assert (MODEL_DIR / name / "heads.safetensors").is_file()
    with pytest.raises(ValueError, match="no member seed-99 in"):
        NeuralPredictor.load(MODEL_DIR, ["seed-99"])
