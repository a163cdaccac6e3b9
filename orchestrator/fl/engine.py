"""The steps of a federated round, shared by every runner.

The in-process runner (`simulation.py`, behind `python -m orchestrator run`)
and the Celery tasks (through `orchestrator/services/rounds.py`, where each simulated
client trains as its own task on a worker) both call these same functions, so a
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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from jobspec import JobSpec

from . import client as local
from .attacks import is_malicious, malicious_clients, poisoned_labels, poisoned_update
from .compression import decode_update, encode_update
from .data import Dataset, load_dataset, stratified_split
from .models import build_model, get_weights, set_weights, uploaded_keys
from .partition import partition_indices
from .privacy import clip_update, epsilon_spent
from .profiles import client_profile, compute_seconds, simulated_duration, training_flops_per_example
from .records import ClientReport, FitIns, FitRes, RoundSummary, ServerState, Weights
from .selection import SELECTION_KEY, initial_history, record_feedback
from .strategies import strategy_for
from .strategy import Strategy
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
    # Rows of the training set held out for validation (spec.validation_fraction); never trained on.
    validation_rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
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

    def train_flops(self, client_id: int) -> float:
        """FLOPs of one round of local training for this client (examples x epochs x counted FLOPs)."""
        if "flops_per_example" not in self._features:
            first = torch.zeros(1, dtype=torch.int64)
            example = local.take(self.features("train"), first)
            self._features["flops_per_example"] = training_flops_per_example(
                self.model, example, self.dataset.y_train[first]
            )
        examples = len(self.client_indices[client_id])
        return examples * self.spec.local_epochs * float(self._features["flops_per_example"])

    def simulated_duration(self, client_id: int, *, bytes_down: float, bytes_up: float) -> float:
        """Simulated seconds of this client's round on its system profile (`profiles.py`)."""
        profile = client_profile(self.spec.seed, client_id)
        return simulated_duration(
            profile, train_flops=self.train_flops(client_id), bytes_down=bytes_down, bytes_up=bytes_up
        )


def spec_key(spec: JobSpec) -> str:
    return spec.model_dump_json()


@lru_cache(maxsize=4)
def _runtime(key: str) -> JobRuntime:
    spec = JobSpec.model_validate_json(key)
    dataset = load_dataset(spec.dataset, seed=spec.seed, path=spec.dataset_path)
    labels = dataset.y_train.numpy()
    train_rows, validation_rows = validation_split(labels, spec)
    parts = partition_indices(
        labels[train_rows], num_clients=spec.num_clients, partition=spec.partition, seed=spec.seed
    )
    indices = [train_rows[part] for part in parts]
    return JobRuntime(spec, dataset, indices, strategy_for(spec), build_model(spec, dataset), validation_rows)


def validation_split(labels: np.ndarray, spec: JobSpec) -> tuple[np.ndarray, np.ndarray]:
    """(rows clients train on, held-out validation rows): a seeded stratified split.

    With no validation fraction every row trains, so partitions are those of a plain job.
    """
    if spec.validation_fraction <= 0:
        return np.arange(len(labels)), np.empty(0, dtype=np.int64)
    return stratified_split(labels, seed=spec.seed, test_fraction=spec.validation_fraction)


def runtime_for(spec: JobSpec) -> JobRuntime:
    return _runtime(spec_key(spec))


def client_seed(spec: JobSpec, server_round: int, client_id: int) -> int:
    return int(np.random.SeedSequence([spec.seed, server_round, client_id]).generate_state(1)[0])


# --- server side ---------------------------------------------------------------------


def job_initialize(spec: JobSpec) -> tuple[Weights, ServerState]:
    """The initial global weights (seeded) and the strategy's initial state, with the selection
    history the scheduling policies read (what the server knows of each client's system)."""
    runtime = runtime_for(spec)
    fresh = build_model(spec, runtime.dataset)
    weights = get_weights(fresh)
    state = runtime.strategy.initialize(weights)
    facts = []
    for client_id in range(spec.num_clients):
        profile = client_profile(spec.seed, client_id)
        facts.append(
            {
                "examples": float(len(runtime.client_indices[client_id])),
                "compute_s": compute_seconds(profile, runtime.train_flops(client_id)),
                "down_bps": profile.down_bps,
                "up_bps": profile.up_bps,
            }
        )
    dense_bytes = float(len(encode_message(weights)))  # until the first uploads show the real sizes
    state.meta[SELECTION_KEY] = initial_history(facts, bytes_down=dense_bytes, bytes_up=dense_bytes)
    return weights, state


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
    runtime = runtime_for(spec)
    decoded = [(decode_uplink(payload), len(payload)) for payload in uplinks]
    decoded.sort(key=lambda item: item[0].client_id)
    results = [result for result, _ in decoded]
    new_weights, new_state, metrics = runtime.strategy.aggregate_fit(
        server_round=server_round, weights=weights, results=results, state=state
    )
    feedback = []
    for result, bytes_up in decoded:
        bytes_down = float(result.metrics.get("bytes_down", 0))
        duration = runtime.simulated_duration(result.client_id, bytes_down=bytes_down, bytes_up=bytes_up)
        feedback.append(
            {
                "client_id": result.client_id,
                "train_loss": result.train_loss,
                "duration_s": duration,
                "bytes_down": bytes_down,
                "bytes_up": bytes_up,
            }
        )
    # A strategy that rebuilds its state without the history must not make the server forget it.
    history = new_state.meta.get(SELECTION_KEY) or state.meta.get(SELECTION_KEY, {})
    new_state = ServerState(
        tensors=new_state.tensors,
        meta={**new_state.meta, SELECTION_KEY: record_feedback(history, server_round, feedback)},
    )
    metrics = {
        **metrics,
        "bytes_up_uncompressed": sum(
            int(result.metrics.get("bytes_up_uncompressed", bytes_up)) for result, bytes_up in decoded
        ),
    }
    if spec.validation_fraction > 0:
        # Every runner records validation metrics with the round, so HPO can compare trials on them.
        val_accuracy, val_loss = evaluate_weights(spec, new_weights, split="validation")
        metrics = {**metrics, "val_accuracy": val_accuracy, "val_loss": val_loss}
    return new_weights, new_state, metrics


def evaluate_weights(
    spec: JobSpec, weights: Weights, *, split: Literal["test", "validation"] = "test"
) -> tuple[float, float]:
    """(accuracy, loss) on the test set, or on the held-out validation rows of the training set."""
    runtime = runtime_for(spec)
    set_weights(runtime.model, weights)
    if split == "validation":
        if not len(runtime.validation_rows):
            raise ValueError("the spec holds out no validation data (validation_fraction is 0)")
        rows = torch.from_numpy(runtime.validation_rows)
        features = local.take(runtime.features("train"), rows)
        return local.evaluate(runtime.model, features, runtime.dataset.y_train[rows])
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
    """The record of one round; every runner builds it here so all report the same figures.

    Besides the aggregate's metrics: `sim_latency_s` (the slowest reporting client's simulated
    download + training + upload time on its system profile), `compression_ratio` (uploaded bytes
    of the same updates uncompressed / uploaded bytes), `epsilon` (client-level DP spent so far, at
    `dp.delta`) and `malicious_selected` (attackers among the selected clients, when attacking).
    """
    runtime = runtime_for(spec)
    clients = []
    for report in sorted(reports, key=lambda r: r.client_id):
        duration = runtime.simulated_duration(
            report.client_id, bytes_down=report.bytes_down, bytes_up=report.bytes_up
        )
        clients.append(replace(report, metrics={**report.metrics, "sim_duration_s": duration}))
    bytes_up = sum(r.bytes_up for r in reports)
    metrics = dict(aggregate_metrics)
    metrics["sim_latency_s"] = max((c.metrics["sim_duration_s"] for c in clients), default=0.0)
    if "bytes_up_uncompressed" in metrics and bytes_up:
        metrics["compression_ratio"] = metrics["bytes_up_uncompressed"] / bytes_up
    epsilon = epsilon_spent(spec, server_round)
    if epsilon is not None:
        metrics["epsilon"] = epsilon
    if spec.attack is not None:
        attackers = malicious_clients(spec)
        metrics["malicious_selected"] = sum(1 for ins in instructions if ins.client_id in attackers)
    return RoundSummary(
        round=server_round,
        accuracy=accuracy,
        loss=loss,
        bytes_up=bytes_up,
        bytes_down=sum(r.bytes_down for r in reports),
        client_cpu_s=sum(r.cpu_s for r in reports),
        wall_s=wall_s,
        selected=[ins.client_id for ins in instructions],
        clients=clients,
        failures=failures,
        metrics=metrics,
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
    spec: JobSpec,
    payload: bytes,
    *,
    client_state: Weights | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[bytes, Weights, ClientReport]:
    """Train one simulated client on its partition: downlink bytes in, uplink bytes out.

    Returns the uplink payload, the client's new private state (error-feedback
    residual, control variates: kept by the client, never sent) and its report.
    `on_batch(done, total)` is called between training batches with the steps done of the
    steps this training takes (the Celery path's lease heartbeat, progress and cancel check);
    an exception it raises stops the client and propagates.
    """
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    runtime = runtime_for(spec)
    tensors, meta = decode_message(payload)
    client_id, config = int(meta["client_id"]), meta["config"]
    global_weights = {k[len(WEIGHT_PREFIX) :]: v for k, v in tensors.items() if k.startswith(WEIGHT_PREFIX)}
    extras = {k[len(EXTRA_PREFIX) :]: v for k, v in tensors.items() if k.startswith(EXTRA_PREFIX)}
    state = dict(client_state or {})

    features, labels = runtime.client_data(client_id)
    labels = poisoned_labels(spec, client_id, labels, runtime.dataset.num_classes)
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
        on_batch=on_batch,
    )
    local_weights = get_weights(model)
    update = {
        k: local_weights[k].to(torch.float32) - global_weights[k].to(torch.float32)
        for k in uploaded_keys(model)
    }
    extras_up, state = strategy.client_extras(
        global_weights=global_weights,
        local_weights=local_weights,
        extras=extras,
        client_state=state,
        steps=steps,
        learning_rate=float(config["learning_rate"]),
    )
    update = poisoned_update(spec, client_id, update, generator)
    if spec.dp.enabled:
        assert spec.dp.clip_norm is not None
        update = clip_update(update, spec.dp.clip_norm)
    residual = {k[len(RESIDUAL_PREFIX) :]: v for k, v in state.items() if k.startswith(RESIDUAL_PREFIX)}
    encoded, compression_meta, residual_after = encode_update(
        update, spec.compression, residual or None, generator
    )
    state = {k: v for k, v in state.items() if not k.startswith(RESIDUAL_PREFIX)}
    state.update({RESIDUAL_PREFIX + k: v for k, v in (residual_after or {}).items()})
    extras_wire = {EXTRA_PREFIX + k: v for k, v in extras_up.items()}
    header = {"client_id": client_id, "num_examples": len(labels), "train_loss": train_loss}
    metrics: dict[str, Any] = {"bytes_down": len(payload)}
    if spec.compression.method != "none":
        # What the same upload would weigh uncompressed: the honest base of the compression ratio.
        dense = {UPDATE_PREFIX + k: v for k, v in update.items()} | extras_wire
        metrics["bytes_up_uncompressed"] = len(
            encode_message(dense, {**header, "compression": {"method": "none"}, "metrics": metrics})
        )
    wire = {UPDATE_PREFIX + k: v for k, v in encoded.items()} | extras_wire
    uplink = encode_message(wire, {**header, "compression": compression_meta, "metrics": metrics})
    if spec.attack is not None and is_malicious(spec, client_id):
        metrics = {**metrics, "malicious": True}
    report = ClientReport(
        client_id=client_id,
        num_examples=len(labels),
        train_loss=train_loss,
        bytes_up=len(uplink),
        bytes_down=len(payload),
        cpu_s=time.process_time() - cpu_start,
        wall_s=time.perf_counter() - wall_start,
        metrics=metrics,
    )
    return uplink, state, report


def warm_up() -> float:
    """Run the contract's default job's first steps once: build its runtime, initialise it,
    train one client and evaluate. A process's first real client then does not pay the
    first-use costs (imports, data loading, kernel set-up: about 3 s here, against 0.03 s
    after). Returns the seconds it took."""
    started = time.perf_counter()
    spec = JobSpec()
    weights, state = job_initialize(spec)
    first = round_configure(spec, 1, state)[0]
    client_fit(spec, downlink_message(spec, weights, state, first), client_state={})
    evaluate_weights(spec, weights)
    return time.perf_counter() - started
