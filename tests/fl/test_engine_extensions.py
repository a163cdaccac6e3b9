"""The engine steps with compression, scheduling, SCAFFOLD, DP and attacks on real digits jobs."""

from __future__ import annotations

import torch

from jobspec import JobSpec
from orchestrator.fl.data import Dataset
from orchestrator.fl.engine import (
    client_fit,
    decode_uplink,
    downlink_message,
    job_initialize,
    round_aggregate,
    round_configure,
)
from orchestrator.fl.models import MODEL_BUILDERS, build_model
from orchestrator.fl.privacy import update_norm
from orchestrator.fl.selection import SELECTION_KEY
from orchestrator.fl.simulation import InProcessJob


def small(**kwargs) -> JobSpec:
    return JobSpec.model_validate({"model": "mlp", "num_clients": 4, "rounds": 2, **kwargs})


def run(spec: JobSpec):
    return list(InProcessJob(spec))


def test_compression_ratio_is_measured_against_the_same_updates_uncompressed() -> None:
    dense = run(small())
    topk = run(small(compression={"method": "topk", "ratio": 0.1}))
    for plain, compressed in zip(dense, topk, strict=True):
        assert plain.metrics["compression_ratio"] == 1.0
        ratio = compressed.metrics["compression_ratio"]
        assert ratio == compressed.metrics["bytes_up_uncompressed"] / compressed.bytes_up
        assert 5 < ratio < 8
        # the uncompressed counterfactual weighs what a plain upload weighs (headers differ by bytes)
        assert abs(compressed.metrics["bytes_up_uncompressed"] - plain.bytes_up) < 100 * len(plain.clients)
        assert all(c.metrics["bytes_up_uncompressed"] > c.bytes_up for c in compressed.clients)


def test_error_feedback_residual_stays_with_the_client() -> None:
    spec = small(compression={"method": "int8"})
    job = InProcessJob(spec)
    job.run_round(1)
    assert all(any(k.startswith("ef/") for k in state) for state in job.client_states.values())
    no_feedback = InProcessJob(small(compression={"method": "int8", "error_feedback": False}))
    no_feedback.run_round(1)
    assert not any(k.startswith("ef/") for state in no_feedback.client_states.values() for k in state)


def test_simulated_latency_is_the_slowest_selected_client() -> None:
    first = run(small())
    again = run(small())
    for summary, repeat in zip(first, again, strict=True):
        durations = [c.metrics["sim_duration_s"] for c in summary.clients]
        assert summary.metrics["sim_latency_s"] == max(durations) > 0
        assert summary.metrics["sim_latency_s"] == repeat.metrics["sim_latency_s"]  # deterministic
    compressed = run(small(compression={"method": "qsgd", "bits": 4}))
    assert compressed[0].metrics["sim_latency_s"] < first[0].metrics["sim_latency_s"]  # smaller uploads


def test_selection_history_learns_losses_durations_and_payload_sizes() -> None:
    spec = small(clients_per_round=2, selection="oort")
    weights, state = job_initialize(spec)
    history = state.meta[SELECTION_KEY]
    assert set(history["clients"]) == {"0", "1", "2", "3"} and history["bytes_up"] > 0
    instructions = round_configure(spec, 1, state)
    uplinks = [client_fit(spec, downlink_message(spec, weights, state, ins))[0] for ins in instructions]
    _, state, _ = round_aggregate(spec, 1, weights, state, uplinks)
    learned = state.meta[SELECTION_KEY]["clients"]
    for ins in instructions:
        facts = learned[str(ins.client_id)]
        assert facts["round"] == 1 and facts["loss"] > 0 and facts["duration_s"] > 0
    assert sum("loss" in facts for facts in learned.values()) == 2


def test_scaffold_control_variates_travel_in_the_counted_payloads() -> None:
    plain, scaffold = small(), small(algorithm="scaffold")
    sizes = {}
    for spec in (plain, scaffold):
        weights, state = job_initialize(spec)
        ins = round_configure(spec, 1, state)[0]
        payload = downlink_message(spec, weights, state, ins)
        uplink, client_state, report = client_fit(spec, payload)
        sizes[spec.algorithm] = (report.bytes_down, report.bytes_up, client_state)
    dense = sum(t.numel() * 4 for t in weights.values())
    assert sizes["scaffold"][0] - sizes["fedavg"][0] >= dense  # c goes down with the weights
    assert sizes["scaffold"][1] - sizes["fedavg"][1] >= dense  # delta c comes back up
    assert any(k.startswith("scaffold/") for k in sizes["scaffold"][2])  # c_i stays on the client


def test_dp_clips_uploads_and_reports_epsilon() -> None:
    spec = small(dp={"clip_norm": 0.5, "noise_multiplier": 1.0})
    weights, state = job_initialize(spec)
    ins = round_configure(spec, 1, state)[0]
    uplink, _, _ = client_fit(spec, downlink_message(spec, weights, state, ins))
    assert update_norm(decode_uplink(uplink).update) <= 0.5 + 1e-5
    summaries = run(spec)
    assert 0 < summaries[0].metrics["epsilon"] < summaries[1].metrics["epsilon"]


def test_attack_is_visible_in_the_round_metrics() -> None:
    spec = small(attack={"kind": "sign_flip", "fraction": 0.5})
    summary = run(spec)[0]
    assert summary.metrics["malicious_selected"] == 2
    assert sum(bool(c.metrics.get("malicious")) for c in summary.clients) == 2
    assert "malicious_selected" not in run(small())[0].metrics


def test_resnet18_takes_32x32_images() -> None:
    assert "resnet18" in MODEL_BUILDERS
    shapes = Dataset(
        "shape-only",
        torch.zeros(2, 3, 32, 32),
        torch.zeros(2, dtype=torch.int64),
        torch.zeros(2, 3, 32, 32),
        torch.zeros(2, dtype=torch.int64),
        tuple(str(i) for i in range(10)),
    )
    spec = JobSpec(dataset="cifar10", model="resnet18")
    model = build_model(spec, shapes)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    params = sum(p.numel() for p in model.parameters())
    assert 11_000_000 < params < 11_300_000
    assert spec.learning_rate == 0.001


def test_warming_up_runs_the_default_job_once() -> None:
    from orchestrator.fl import engine

    assert engine.warm_up() > 0
    hits = engine._runtime.cache_info().hits
    engine.runtime_for(JobSpec())  # built by the warm-up: a cache hit now
    assert engine._runtime.cache_info().hits == hits + 1
