"""The fine-tuned encoder: all-MiniLM-L6-v2 adapted with LoRA, with decoding heads.

One forward pass reads the whole prompt. Sentence heads (each reads the mean token state plus its
own attention-weighted summary) say which value each enum field takes and whether the prompt is a
job at all; each field a search can keep fixed has its own summary too, so a list of several pinned
fields is read field by field. The span head classifies every number the scanner found: its
representation is the mean state of the number's own tokens, of the two tokens either side and of
a few tokens beyond those, plus the shape of the written number (percent, fraction, decimal,
magnitude), and it answers which field the number sets.

The shipped model is an ensemble: the same data and settings trained with different seeds,
each member in its own folder, their head probabilities averaged before decoding. Members
disagree most where one run guessed, so the average reads unseen wording better than any
one of them. For inference each member's LoRA update is merged into a copy of the encoder's
weights, so parsing costs one plain MiniLM forward pass per member.
"""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer
from torch import nn

from .featurize import Prepared, encoder_dir
from .fields import (
    ENUM_HEADS,
    INTENT_LABELS,
    LabelMismatch,
    Vocabulary,
    check_head_labels,
    code_vocabulary,
)
from .numbers import NUMBER_FEATURES

MAX_TOKENS = 192
# A number's context: the words right next to it say most ("noise mult 0.5" after "clip norm 2"),
# so the nearest tokens have windows of their own, apart from the farther ones.
NEAR_CONTEXT = 2
LEFT_CONTEXT = 8
RIGHT_CONTEXT = 6
WINDOWS = 5  # own tokens, near left, far left, near right, far right
HEADS = {"intent": len(INTENT_LABELS), **{name: len(labels) for name, labels in ENUM_HEADS.items()}}
LORA_TARGETS = ["query", "key", "value", "dense"]


def _key(head: str) -> str:
    return head.replace(".", "__")


def load_tokenizer() -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(encoder_dir() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    return tokenizer


def load_encoder() -> nn.Module:
    """The pretrained MiniLM encoder from the installed package, offline."""
    from transformers import BertModel
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()
    return BertModel.from_pretrained(str(encoder_dir()), local_files_only=True)


@dataclass
class Encoded:
    """A prompt as token ids, and for each number span the token indices of its WINDOWS."""

    ids: list[int]
    windows: list[tuple[list[int], ...]]
    number_features: list[list[float]]


def encode(tokenizer: Tokenizer, prepared: Prepared) -> Encoded:
    encoding = tokenizer.encode(prepared.text)
    offsets = encoding.offsets
    special = set(i for i, mask in enumerate(encoding.special_tokens_mask) if mask)
    windows: list[tuple[list[int], ...]] = []
    for span in prepared.spans:
        own = [
            i
            for i, (start, end) in enumerate(offsets)
            if i not in special and start < span.end and end > span.start
        ]
        if own:
            left = [i for i in range(max(1, own[0] - LEFT_CONTEXT), own[0]) if i not in special]
            right = [
                i
                for i in range(own[-1] + 1, min(len(offsets), own[-1] + 1 + RIGHT_CONTEXT))
                if i not in special
            ]
        else:
            left, right = [], []
        near_left, far_left = left[-NEAR_CONTEXT:], left[:-NEAR_CONTEXT]
        near_right, far_right = right[:NEAR_CONTEXT], right[NEAR_CONTEXT:]
        windows.append((own, near_left, far_left, near_right, far_right))
    return Encoded(encoding.ids, windows, [span.features() for span in prepared.spans])


@dataclass
class Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    # Each number span has WINDOWS windows (own tokens, then context); window w of span s is
    # row WINDOWS*s+w. `window_tokens` index the flattened (prompt, token) states, `window_rows`
    # says which window each of them belongs to and `window_weights` averages them.
    window_tokens: torch.Tensor
    window_rows: torch.Tensor
    window_weights: torch.Tensor
    span_features: torch.Tensor

    @property
    def span_count(self) -> int:
        return int(self.span_features.shape[0])


def collate(encoded: list[Encoded], pad_to: int = 1) -> Batch:
    """A batch; `pad_to` rounds its length up (few distinct shapes keep training memory flat)."""
    length = max(len(item.ids) for item in encoded)
    length = -(-length // pad_to) * pad_to
    ids = torch.zeros((len(encoded), length), dtype=torch.long)
    mask = torch.zeros((len(encoded), length), dtype=torch.long)
    tokens: list[int] = []
    rows: list[int] = []
    weights: list[float] = []
    features: list[list[float]] = []
    for row, item in enumerate(encoded):
        ids[row, : len(item.ids)] = torch.tensor(item.ids)
        mask[row, : len(item.ids)] = 1
        for window, numbers in zip(item.windows, item.number_features, strict=True):
            span = len(features)
            for part, indices in enumerate(window):
                if not indices:
                    continue  # a number truncated away, or at the very start: that window stays zero
                tokens += [row * length + index for index in indices]
                rows += [WINDOWS * span + part] * len(indices)
                weights += [1.0 / len(indices)] * len(indices)
            features.append(numbers)
    return Batch(
        ids,
        mask,
        torch.tensor(tokens, dtype=torch.long),
        torch.tensor(rows, dtype=torch.long),
        torch.tensor(weights, dtype=torch.float32),
        torch.tensor(features, dtype=torch.float32) if features else torch.zeros((0, NUMBER_FEATURES)),
    )


class IntentNet(nn.Module):
    """Heads sized by `labels` (each head's vocabulary): the code's when training, the one a
    shipped model recorded when loading it."""

    def __init__(
        self,
        encoder: nn.Module,
        hidden: int = 384,
        dropout: float = 0.1,
        labels: Vocabulary | None = None,
    ) -> None:
        super().__init__()
        self.labels = labels or code_vocabulary()
        sizes = {name: len(self.labels[name]) for name in HEADS}
        fixable = len(self.labels["fixed"])
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.trunk = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU())
        # Each sentence head, and each fixable field after them, reads its own attention-weighted
        # summary of the tokens besides the mean: in a prompt that sets fifteen fields, the
        # words about one field are a small part of the mean.
        self.queries = nn.Parameter(torch.randn(len(HEADS) + fixable, hidden) * 0.02)
        self.heads = nn.ModuleDict({_key(name): nn.Linear(hidden, size) for name, size in sizes.items()})
        # One logit per fixable field, each from that field's own summary.
        self.fixed_weight = nn.Parameter(torch.randn(fixable, hidden) * 0.02)
        self.fixed_bias = nn.Parameter(torch.zeros(fixable))
        self.span_head = nn.Sequential(
            nn.Linear(WINDOWS * hidden + NUMBER_FEATURES, 256),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(256, len(self.labels["spans"])),
        )

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        states = self.encoder(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask
        ).last_hidden_state
        mask = batch.attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        scores = torch.einsum("bth,qh->bqt", states, self.queries) / states.shape[-1] ** 0.5
        scores = scores.masked_fill(batch.attention_mask.unsqueeze(1) == 0, float("-inf"))
        attended = torch.einsum("bqt,bth->bqh", torch.softmax(scores, -1), states)
        trunk = self.trunk(self.dropout(pooled.unsqueeze(1) + attended))  # (batch, head, hidden)
        out = {name: self.heads[_key(name)](trunk[:, index]) for index, name in enumerate(HEADS)}
        out["fixed"] = (trunk[:, len(HEADS) :] * self.fixed_weight).sum(-1) + self.fixed_bias
        if batch.span_count:
            flat = states.flatten(0, 1)[batch.window_tokens] * batch.window_weights.unsqueeze(-1).to(
                states.dtype
            )
            windows = states.new_zeros((WINDOWS * batch.span_count, states.shape[-1])).index_add_(
                0, batch.window_rows, flat
            )
            span_input = torch.cat([windows.view(batch.span_count, -1), batch.span_features], dim=-1)
            out["spans"] = self.span_head(self.dropout(span_input))
        else:
            out["spans"] = states.new_zeros((0, len(self.labels["spans"])))
        return out

    def head_state(self) -> dict[str, torch.Tensor]:
        """Everything but the encoder: the trained heads."""
        return {name: value for name, value in self.state_dict().items() if not name.startswith("encoder.")}


def lora_config(rank: int, alpha: int, dropout: float = 0.05) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=LORA_TARGETS)


def save_member(directory: Path, net: IntentNet, adapter: dict[str, torch.Tensor]) -> None:
    """One member's trained weights: its LoRA adapter and its heads."""
    directory.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.detach().contiguous().cpu() for k, v in adapter.items()}, str(directory / "adapter.safetensors")
    )
    save_file(
        {k: v.detach().contiguous().cpu() for k, v in net.head_state().items()},
        str(directory / "heads.safetensors"),
    )


def _head_sizes(heads: dict[str, torch.Tensor]) -> dict[str, int]:
    """How many outputs each head of a saved member has."""
    sizes = {
        name: int(heads[f"heads.{_key(name)}.bias"].shape[0])
        for name in HEADS
        if f"heads.{_key(name)}.bias" in heads
    }
    if "fixed_bias" in heads:
        sizes["fixed"] = int(heads["fixed_bias"].shape[0])
    if "span_head.3.bias" in heads:
        sizes["spans"] = int(heads["span_head.3.bias"].shape[0])
    return sizes


def check_head_shapes(heads: dict[str, torch.Tensor], labels: Vocabulary, source: str) -> None:
    """Refuse weights whose heads have another number of outputs than the recorded labels."""
    sizes = _head_sizes(heads)
    problems = [
        f"head '{head}' has {sizes.get(head, 'no')} outputs for {len(labels[head])} labels"
        for head in labels
        if sizes.get(head) != len(labels[head])
    ]
    if problems:
        raise LabelMismatch(
            f"{source} does not match the labels its config.json records: "
            + "; ".join(problems)
            + "; retrain: python -m intent_llm train"
        )


def load_member(
    directory: Path, encoder: nn.Module, rank: int, alpha: int, labels: Vocabulary | None = None
) -> IntentNet:
    """A member: its LoRA merged into `encoder` (changed in place), and its heads, sized by
    `labels` (the model's recorded vocabulary; the code's when None)."""
    from peft import get_peft_model, set_peft_model_state_dict

    labels = labels or code_vocabulary()
    heads = load_file(str(directory / "heads.safetensors"))
    check_head_shapes(heads, labels, str(directory / "heads.safetensors"))
    with warnings.catch_warnings():  # peft calls a transformers method deprecated in v5
        warnings.simplefilter("ignore", FutureWarning)
        peft_model = get_peft_model(encoder, lora_config(rank, alpha, 0.0))
    set_peft_model_state_dict(peft_model, load_file(str(directory / "adapter.safetensors")))
    net = IntentNet(peft_model.merge_and_unload(), labels=labels)
    missing, unexpected = net.load_state_dict(heads, strict=False)
    if unexpected or any(not name.startswith("encoder.") for name in missing):
        raise RuntimeError(f"heads do not match the model: missing {missing}, unexpected {unexpected}")
    return net.eval()


def average_outputs(outputs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The members' probabilities, averaged key by key."""
    return {key: np.mean([output[key] for output in outputs], axis=0) for key in outputs[0]}


class NeuralPredictor:
    """The members, ready to read prompts (batch of one, no gradients).

    `directory/config.json` names the members (folders in `directory`), their LoRA settings and
    each head's label vocabulary (`labels`). `labels` is what this model's outputs mean: the
    decoder reads them with it, not with the code's tables (fields.check_head_labels).
    """

    def __init__(self, nets: list[IntentNet], tokenizer: Tokenizer) -> None:
        self.nets = [net.eval() for net in nets]
        self.tokenizer = tokenizer
        self.labels: Vocabulary = nets[0].labels

    @classmethod
    def load(cls, directory: Path, members: list[str] | None = None) -> NeuralPredictor:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        labels = check_head_labels(config.get("labels"), str(directory / "config.json"))
        names = members or list(config["members"])
        unknown = sorted(set(names) - set(config["members"]))
        if unknown:
            raise ValueError(
                f"no member {', '.join(unknown)} in {directory}: it has {', '.join(config['members'])}"
            )
        encoder = load_encoder()  # read once; each further member merges its LoRA into a copy
        encoders = [encoder] + [copy.deepcopy(encoder) for _ in names[1:]]
        rank, alpha = config["lora"]["rank"], config["lora"]["alpha"]
        nets = [
            load_member(directory / name, base, rank, alpha, labels)
            for name, base in zip(names, encoders, strict=True)
        ]
        return cls(nets, load_tokenizer())

    @torch.inference_mode()
    def predict(self, prepared: Prepared) -> dict[str, np.ndarray]:
        batch = collate([encode(self.tokenizer, prepared)])
        return average_outputs([_probabilities(net(batch)) for net in self.nets])


def _probabilities(out: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    result = {name: torch.softmax(out[name][0], -1).numpy() for name in HEADS}
    result["fixed"] = torch.sigmoid(out["fixed"][0]).numpy()
    result["spans"] = torch.softmax(out["spans"], -1).numpy()
    return result
