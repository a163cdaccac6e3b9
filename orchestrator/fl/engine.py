"""The steps of a federated round, shared by every runner.

The in-process runner (`simulation.py`, behind `python -m orchestrator run`),
the Celery tasks and the edge-node agent all call these same functions, so a
job gives the same numbers whichever ran it:

    weights, state = job_initialize(spec)
    for each round:
        instructions = round_configure(spec, r, state)                # server
        payload = downlink_message(spec, weights, state, ins)         # server -> client
        uplink, client_state, report = client_fit(spec, payload, ...)  # client
        weights, state, metrics = round_aggregate(spec, r, weights, state, uplinks)
        accuracy, loss = evaluate_weights(spec, weights)

Payloads are bytes in the wire format (`wire.py`): byte counts are their lengths.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn

from . import client as local
from .compression import decode_update, encode_update
from .data import Dataset, load_dataset
from .models import build_model, get_weights, set_weights
from .partition import partition_indices
from .records import ClientReport, FitIns, FitRes, RoundSummary, ServerState, Weights
from .spec import JobSpec
from .strategies import Strategy, strategy_for
from .wire import decode_message, encode_message

WEIGHT_PREFIX = "w/"
EXTRA_PREFIX = "x/"
UPDATE_PREFIX = "u/"
RESIDUAL_PREFIX = "ef/"  # client state: what error feedback carries to the next round


@dataclass
class JobRuntime:
    """What a process needs to serve one job, built once and cached per process."""

    spec: JobSpec
    dataset: Dataset
    client_indices: list[np.ndarray]
    strategy: Strategy
    model: nn.Module
    _features: dict[str, Any] = field(default_factory=dict)

    def features(self, split: str) -> local.Features:
        """Model inputs for 'train' or 'test' (text is tokenized once, by the model)."""
        if split not in self._features:
            raw = self.dataset.x_train if split == "train" else self.dataset.x_test
            encode = getattr(self.model, "encode_texts", None)
            if isinstance(raw, list):
                if encode is None:
                    raise ValueError(f"model '{self.spec.model}' cannot read text")
                self._features[split] = encode(raw)
            else:
                self._features[split] = raw
        return self._features[split]

    def client_data(self, client_id: int) -> tuple[local.Features, torch.Tensor]:
        index = torch.from_numpy(self.client_indices[client_id])
        return local.take(self.features("train"), index), self.dataset.y_train[index]


def spec_key(spec: JobSpec) -> str:
    return spec.model_dump_json()


@lru_cache(maxsize=4)
def _runtime(key: str) -> JobRuntime:
    spec = JobSpec.model_validate_json(key)
    dataset = load_dataset(spec.dataset, seed=spec.seed, path=spec.dataset_path)
    indices = partition_indices(
        dataset.y_train.numpy(), num_clients=spec.num_clients, partition=spec.partition, seed=spec.seed
    )
    return JobRuntime(spec, dataset, indices, strategy_for(spec), build_model(spec, dataset))


def runtime_for(spec: JobSpec) -> JobRuntime:
    return _runtime(spec_key(spec))


def client_seed(spec: JobSpec, server_round: int, client_id: int) -> int:
    return int(np.random.SeedSequence([spec.seed, server_round, client_id]).generate_state(1)[0])


# --- server side ---------------------------------------------------------------------


def job_initialize(spec: JobSpec) -> tuple[Weights, ServerState]:
    """The initial global weights (seeded) and the strategy's initial state."""
    runtime = runtime_for(spec)
    fresh = build_model(spec, runtime.dataset)
    weights = get_weights(fresh)
    return weights, runtime.strategy.initialize(weights)


def round_configure(spec: JobSpec, server_round: int, state: ServerState) -> list[FitIns]:
    return runtime_for(spec).strategy.configure_fit(server_round=server_round, state=state)


def downlink_message(spec: JobSpec, weights: Weights, state: ServerState, ins: FitIns) -> bytes:
    extras = runtime_for(spec).strategy.downlink_extras(state=state, client_id=ins.client_id)
    tensors = {WEIGHT_PREFIX + k: v for k, v in weights.items()}
    tensors.update({EXTRA_PREFIX + k: v for k, v in extras.items()})
    return encode_message(tensors, {"client_id": ins.client_id, "config": ins.config})


def round_aggregate(
    spec: JobSpec, server_round: int, weights: Weights, state: ServerState, uplinks: list[bytes]
) -> tuple[Weights, ServerState, dict[str, Any]]:
    """Decode the clients' uplink payloads and let the strategy aggregate them."""
    if not uplinks:
        raise ValueError("no client update arrived this round")
    results = sorted((decode_uplink(payload) for payload in uplinks), key=lambda r: r.client_id)
    return runtime_for(spec).strategy.aggregate_fit(
        server_round=server_round, weights=weights, results=results, state=state
    )


def evaluate_weights(spec: JobSpec, weights: Weights) -> tuple[float, float]:
    runtime = runtime_for(spec)
    set_weights(runtime.model, weights)
    return local.evaluate(runtime.model, runtime.features("test"), runtime.dataset.y_test)


def summarize_round(
    spec: JobSpec,
    server_round: int,
    *,
    instructions: list[FitIns],
    reports: list[ClientReport],
    failures: list[dict[str, Any]],
    aggregate_metrics: dict[str, Any],
    accuracy: float,
    loss: float,
    wall_s: float,
) -> RoundSummary:
    """The record of one round; every runner builds it here so all report the same figures."""
    return RoundSummary(
        round=server_round,
        accuracy=accuracy,
        loss=loss,
        bytes_up=sum(r.bytes_up for r in reports),
        bytes_down=sum(r.bytes_down for r in reports),
        client_cpu_s=sum(r.cpu_s for r in reports),
        wall_s=wall_s,
        selected=[ins.client_id for ins in instructions],
        clients=sorted(reports, key=lambda r: r.client_id),
        failures=failures,
        metrics=dict(aggregate_metrics),
    )


def decode_uplink(payload: bytes) -> FitRes:
    tensors, meta = decode_message(payload)
    update = {k[len(UPDATE_PREFIX) :]: v for k, v in tensors.items() if k.startswith(UPDATE_PREFIX)}
    extras = {k[len(EXTRA_PREFIX) :]: v for k, v in tensors.items() if k.startswith(EXTRA_PREFIX)}
    return FitRes(
        client_id=int(meta["client_id"]),
        num_examples=int(meta["num_examples"]),
        train_loss=float(meta["train_loss"]),
        update=decode_update(update, meta["compression"]),
        extras=extras,
        metrics=meta.get("metrics", {}),
    )


# --- client side ---------------------------------------------------------------------


def client_fit(
    spec: JobSpec, payload: bytes, *, client_state: Weights | None = None
) -> tuple[bytes, Weights, ClientReport]:
    """Train one simulated client on its partition: downlink bytes in, uplink bytes out.

    Returns the uplink payload, the client's new private state (error-feedback
    residual, control variates: kept by the client, never sent) and its report.
    """
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    runtime = runtime_for(spec)
    tensors, meta = decode_message(payload)
    client_id, config = int(meta["client_id"]), meta["config"]
    global_weights = {k[len(WEIGHT_PREFIX) :]: v for k, v in tensors.items() if k.startswith(WEIGHT_PREFIX)}
    extras = {k[len(EXTRA_PREFIX) :]: v for k, v in tensors.items() if k.startswith(EXTRA_PREFIX)}
    state = dict(client_state or {})

    features, labels = runtime.client_data(client_id)
    model = runtime.model
    set_weights(model, global_weights)
    generator = torch.Generator().manual_seed(client_seed(spec, int(config["round"]), client_id))
    strategy = runtime.strategy
    train_loss, steps = local.local_train(
        model,
        features,
        labels,
        config=config,
        generator=generator,
        grad_correction=strategy.client_grad_correction(extras=extras, client_state=state),
    )
    local_weights = get_weights(model)
    update = {
        k: local_weights[k].to(torch.float32) - global_weights[k].to(torch.float32) for k in global_weights
    }
    extras_up, state = strategy.client_extras(
        global_weights=global_weights,
        local_weights=local_weights,
        extras=extras,
        client_state=state,
        steps=steps,
        learning_rate=float(config["learning_rate"]),
    )
    residual = {k[len(RESIDUAL_PREFIX) :]: v for k, v in state.items() if k.startswith(RESIDUAL_PREFIX)}
    encoded, compression_meta, residual_after = encode_update(
        update, spec.compression, residual or None, generator
    )
    state = {k: v for k, v in state.items() if not k.startswith(RESIDUAL_PREFIX)}
    state.update({RESIDUAL_PREFIX + k: v for k, v in (residual_after or {}).items()})
    wire = {UPDATE_PREFIX + k: v for k, v in encoded.items()}
    wire.update({EXTRA_PREFIX + k: v for k, v in extras_up.items()})
    uplink = encode_message(
        wire,
        {
            "client_id": client_id,
            "num_examples": len(labels),
            "train_loss": train_loss,
            "compression": compression_meta,
        },
    )
    report = ClientReport(
        client_id=client_id,
        num_examples=len(labels),
        train_loss=train_loss,
        bytes_up=len(uplink),
        bytes_down=len(payload),
        cpu_s=time.process_time() - cpu_start,
        wall_s=time.perf_counter() - wall_start,
    )
    return uplink, state, report
