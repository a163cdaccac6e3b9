"""The networks clients train, built from the spec and the data set's shape.

`MODEL_BUILDERS` maps a spec model name to a builder. A model's *federated
weights* are what travels and is aggregated: every entry of its state dict,
unless the model names a subset in `federated_keys` (LoRA models send only
adapters and head).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from jobspec import JobSpec

from .data import Dataset
from .resnet import ResNet18
from .text import build_lora_classifier

Weights = dict[str, torch.Tensor]

DEFAULT_MLP_HIDDEN = [128]
DEFAULT_CNN_CHANNELS = [32, 64]
DEFAULT_CNN_KERNEL = 3
CNN_HEAD_WIDTH = 128


class MLP(nn.Module):
    def __init__(self, in_features: int, hidden: list[int], num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNN(nn.Module):
    """Conv blocks (max-pooling while the map is at least 8 pixels wide), then two dense layers."""

    def __init__(self, in_shape: tuple[int, ...], channels: list[int], kernel: int, num_classes: int) -> None:
        super().__init__()
        in_channels, height, width = in_shape
        blocks: list[nn.Module] = []
        for size in channels:
            blocks += [nn.Conv2d(in_channels, size, kernel, padding=kernel // 2), nn.ReLU()]
            if min(height, width) >= 8:
                blocks.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            in_channels = size
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_channels * height * width, CNN_HEAD_WIDTH),
            nn.ReLU(),
            nn.Linear(CNN_HEAD_WIDTH, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_mlp(spec: JobSpec, dataset: Dataset) -> nn.Module:
    hidden = (spec.architecture and spec.architecture.hidden) or DEFAULT_MLP_HIDDEN
    in_features = 1
    for dim in dataset.input_shape:
        in_features *= dim
    return MLP(in_features, list(hidden), dataset.num_classes)


def build_cnn(spec: JobSpec, dataset: Dataset) -> nn.Module:
    arch = spec.architecture
    channels = (arch and arch.channels) or DEFAULT_CNN_CHANNELS
    kernel = (arch and arch.kernel) or DEFAULT_CNN_KERNEL
    return CNN(dataset.input_shape, list(channels), kernel, dataset.num_classes)


def build_resnet18(spec: JobSpec, dataset: Dataset) -> nn.Module:
    return ResNet18(dataset.input_shape[0], dataset.num_classes)


MODEL_BUILDERS: dict[str, Callable[[JobSpec, Dataset], nn.Module]] = {
    "mlp": build_mlp,
    "cnn": build_cnn,
    "resnet18": build_resnet18,
    "minilm": build_lora_classifier,
    "hf": build_lora_classifier,
}


def build_model(spec: JobSpec, dataset: Dataset) -> nn.Module:
    """A freshly initialised model; the same seed gives the same weights."""
    assert spec.model is not None
    key = "hf" if spec.model.startswith("hf:") else spec.model
    builder = MODEL_BUILDERS.get(key)
    if builder is None:
        raise ValueError(f"model '{spec.model}' is not available in this installation")
    torch.manual_seed(spec.seed)
    return builder(spec, dataset)


def federated_keys(model: nn.Module) -> list[str]:
    keys = getattr(model, "federated_keys", None)
    return list(keys) if keys is not None else list(model.state_dict().keys())


def uploaded_keys(model: nn.Module) -> list[str]:
    """The federated keys a client trains and sends back: all of them, except those the
    model marks as `server_owned_keys` (FLoRA's merged update only travels down)."""
    owned = set(getattr(model, "server_owned_keys", ()))
    return [key for key in federated_keys(model) if key not in owned]


def get_weights(model: nn.Module) -> Weights:
    state = model.state_dict()
    return {key: state[key].detach().clone() for key in federated_keys(model)}


def set_weights(model: nn.Module, weights: Weights) -> None:
    missing = set(federated_keys(model)) - set(weights)
    if missing:
        raise ValueError(f"weights lack {sorted(missing)[:3]}")
    model.load_state_dict(weights, strict=False)
