"""Byte accounting from real payloads, and FedAvg weighting on hand-computed tensors."""

from __future__ import annotations

import torch

from jobspec import JobSpec
from orchestrator.fl.aggregation import apply_update, weighted_average
from orchestrator.fl.engine import client_fit, downlink_message, job_initialize, round_configure
from orchestrator.fl.wire import decode_message, encode_message


def test_fedavg_weights_updates_by_examples() -> None:
    a = {"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([0.0])}
    b = {"w": torch.tensor([4.0, 8.0]), "b": torch.tensor([3.0])}
    # 1 example vs 2 examples: (1*a + 2*b) / 3
    avg = weighted_average([a, b], [1, 2])
    assert torch.allclose(avg["w"], torch.tensor([3.0, 6.0]))
    assert torch.allclose(avg["b"], torch.tensor([2.0]))


def test_apply_update_scales_the_step() -> None:
    weights = {"w": torch.tensor([1.0, 1.0])}
    assert torch.allclose(
        apply_update(weights, {"w": torch.tensor([2.0, -2.0])}, 0.5)["w"], torch.tensor([2.0, 0.0])
    )


def test_wire_roundtrip_keeps_tensors_and_meta() -> None:
    tensors = {
        "a": torch.arange(6, dtype=torch.float32).view(2, 3),
        "i": torch.tensor([1, 2], dtype=torch.uint8),
    }
    payload = encode_message(tensors, {"client_id": 3, "config": {"round": 2}})
    decoded, meta = decode_message(payload)
    assert meta == {"client_id": 3, "config": {"round": 2}}
    assert torch.equal(decoded["a"], tensors["a"]) and decoded["i"].dtype == torch.uint8


def test_payload_size_grows_with_the_tensors_it_carries() -> None:
    small = encode_message({"x": torch.zeros(10)})
    large = encode_message({"x": torch.zeros(1010)})
    assert len(large) - len(small) == 1000 * 4


def test_client_report_counts_the_real_payload_lengths() -> None:
    spec = JobSpec(model="mlp", num_clients=4, rounds=1)
    weights, state = job_initialize(spec)
    ins = round_configure(spec, 1, state)[0]
    payload = downlink_message(spec, weights, state, ins)
    uplink, _, report = client_fit(spec, payload)
    assert report.bytes_down == len(payload)
    assert report.bytes_up == len(uplink)
    dense = sum(t.numel() * 4 for t in weights.values())
    assert dense < report.bytes_up < dense + 4096  # float32 update plus a small header
    assert report.num_examples > 0 and report.cpu_s > 0
