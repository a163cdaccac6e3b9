"""Local training on one client's partition."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

Features = torch.Tensor | dict[str, torch.Tensor]
EVAL_BATCH = 512


def take(features: Features, index: torch.Tensor) -> Features:
    if isinstance(features, dict):
        return {key: value[index] for key, value in features.items()}
    return features[index]


def forward(model: nn.Module, features: Features) -> torch.Tensor:
    return model(**features) if isinstance(features, dict) else model(features)


def make_optimizer(name: str, params: list[nn.Parameter], learning_rate: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=learning_rate)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=learning_rate)
    return torch.optim.Adam(params, lr=learning_rate)


def local_train(
    model: nn.Module,
    features: Features,
    labels: torch.Tensor,
    *,
    config: dict[str, Any],
    generator: torch.Generator,
    grad_correction: Callable[[nn.Module], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[float, int]:
    """Train in place for `epochs` passes; returns (mean training loss, optimizer steps).

    A positive `proximal_mu` adds FedProx's term mu/2 * ||w - w_global||^2. `on_batch(done,
    total)` is called after every optimizer step with the steps done and the steps this
    training takes (a runner's heartbeat and progress); what it raises stops training.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(config["optimizer"], params, config["learning_rate"])
    mu = float(config.get("proximal_mu") or 0.0)
    anchors = [p.detach().clone() for p in params] if mu > 0 else []
    batch_size = int(config["batch_size"])
    n = len(labels)
    epochs = int(config["epochs"])
    total_steps = epochs * math.ceil(n / batch_size)
    model.train()
    total_loss, seen, steps = 0.0, 0, 0
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            target = labels[index]
            loss = F.cross_entropy(forward(model, take(features, index)), target)
            objective = loss
            if mu > 0:
                objective = loss + 0.5 * mu * sum(
                    ((p - a) ** 2).sum() for p, a in zip(params, anchors, strict=True)
                )
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            if grad_correction is not None:
                grad_correction(model)
            optimizer.step()
            total_loss += float(loss.detach()) * len(index)
            seen += len(index)
            steps += 1
            if on_batch is not None:
                on_batch(steps, total_steps)
    return total_loss / max(seen, 1), steps


@torch.no_grad()
def evaluate(model: nn.Module, features: Features, labels: torch.Tensor) -> tuple[float, float]:
    """(accuracy, mean cross-entropy loss) over a data set."""
    model.eval()
    correct, loss_sum = 0, 0.0
    n = len(labels)
    for start in range(0, n, EVAL_BATCH):
        index = torch.arange(start, min(start + EVAL_BATCH, n))
        logits = forward(model, take(features, index))
        target = labels[index]
        loss_sum += float(F.cross_entropy(logits, target, reduction="sum"))
        correct += int((logits.argmax(dim=1) == target).sum())
    return correct / max(n, 1), loss_sum / max(n, 1)
