"""Compression: error bounds, unbiasedness, exact top-k, error feedback, compact real payloads."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from jobspec import Compression
from orchestrator.fl.compression import (
    INT8_LEVELS,
    QSGD_BUCKET,
    decode_update,
    encode_update,
    pack_codes,
    qsgd_grid_points,
    unpack_codes,
)
from orchestrator.fl.wire import decode_message, encode_message


def sample_update(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "layer.weight": torch.randn(40, 30, generator=g) * 0.05,
        "layer.bias": torch.randn(40, generator=g) * 0.01,
        "head.weight": torch.randn(10, 40, generator=g),
        "head.bias": torch.zeros(10),
    }


def roundtrip(update, compression, residual=None, seed=0):
    """Encode, serialize, parse and decode, as the uplink does."""
    generator = torch.Generator().manual_seed(seed)
    tensors, meta, new_residual = encode_update(update, compression, residual, generator)
    payload = encode_message(tensors, {"compression": meta})
    wire_tensors, wire_meta = decode_message(payload)
    return decode_update(wire_tensors, wire_meta["compression"]), new_residual, payload


def test_none_passes_the_update_through() -> None:
    update = sample_update()
    decoded, residual, _ = roundtrip(update, Compression())
    assert residual is None
    assert all(torch.equal(decoded[k], update[k]) for k in update)


def test_int8_error_is_at_most_half_a_step_of_the_tensor_scale() -> None:
    update = sample_update()
    decoded, _, _ = roundtrip(update, Compression(method="int8", error_feedback=False))
    for key, value in update.items():
        step = float(value.abs().max()) / INT8_LEVELS
        assert decoded[key].shape == value.shape
        assert float((decoded[key] - value).abs().max()) <= step / 2 + 1e-7
    assert torch.equal(decoded["head.bias"], torch.zeros(10))  # an all-zero tensor survives


@pytest.mark.parametrize("bits", [1, 2, 4, 8, 16])
def test_qsgd_error_is_within_one_grid_step_of_the_bucket_scale(bits: int) -> None:
    update = {"w": torch.randn(3 * QSGD_BUCKET + 17) * torch.linspace(0.01, 3.0, 3 * QSGD_BUCKET + 17)}
    decoded, _, _ = roundtrip(update, Compression(method="qsgd", bits=bits, error_feedback=False))
    step = 2.0 / (qsgd_grid_points(bits) - 1)
    value = update["w"]
    for start in range(0, len(value), QSGD_BUCKET):
        chunk = slice(start, start + QSGD_BUCKET)
        scale = float(value[chunk].abs().max())
        assert float((decoded["w"][chunk] - value[chunk]).abs().max()) <= step * scale * (1 + 1e-5)


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_qsgd_is_unbiased_over_many_draws(bits: int) -> None:
    value = torch.tensor([0.9, -0.35, 0.02, 0.0, -1.0, 0.5, 0.123, -0.777])
    draws = 8000
    # Every bucket holds -1.0, so each copy is scaled by 1 exactly as the vector alone would be:
    # one encode of 8000 copies is 8000 independent draws.
    tiled = value.repeat(draws)
    decoded, _, _ = roundtrip({"w": tiled}, Compression(method="qsgd", bits=bits, error_feedback=False))
    samples = decoded["w"].reshape(draws, len(value))
    mean = samples.mean(dim=0)
    # Each draw is off by at most one grid step: variance <= step^2 / 4 per entry.
    step = 2.0 / (qsgd_grid_points(bits) - 1)
    tolerance = 5 * (step / 2) / math.sqrt(draws)
    assert float((mean - value).abs().max()) <= tolerance
    assert float(samples.std(dim=0).max()) > 0  # the rounding is stochastic, not deterministic


def test_topk_keeps_exactly_the_largest_entries_of_each_tensor() -> None:
    update = sample_update()
    ratio = 0.1
    decoded, _, _ = roundtrip(update, Compression(method="topk", ratio=ratio, error_feedback=False))
    for key, value in update.items():
        flat, kept = value.reshape(-1), decoded[key].reshape(-1)
        k = max(1, math.ceil(ratio * flat.numel()))
        largest = set(torch.topk(flat.abs(), k).indices.tolist())
        nonzero = set(torch.nonzero(kept).reshape(-1).tolist())
        if key != "head.bias":  # all zeros: its kept entry is a zero
            assert nonzero == largest
        assert torch.equal(kept[sorted(largest)], flat[sorted(largest)])  # values exact
        assert int((kept != 0).sum()) <= k


def test_topk_indices_use_a_bitmask_or_the_narrowest_integer_type() -> None:
    generator = torch.Generator().manual_seed(0)
    dense = {"w": torch.randn(1000)}  # 1000 entries: indices fit uint16, a mask takes 125 bytes
    tensors, meta, _ = encode_update(dense, Compression(method="topk", ratio=0.1), None, generator)
    assert meta["index"] == "mask" and tensors["mask"].dtype == torch.uint8 and tensors["mask"].numel() == 125
    tensors, meta, _ = encode_update(dense, Compression(method="topk", ratio=0.01), None, generator)
    assert meta["index"] == "uint16" and tensors["index"].dtype == torch.uint16  # 10 x 2 bytes < 125
    tensors, meta, _ = encode_update(
        {"w": torch.randn(200)}, Compression(method="topk", ratio=0.02), None, generator
    )
    assert meta["index"] == "uint8"


def test_compressed_payloads_are_as_small_as_their_contents() -> None:
    update = {"w": torch.randn(100_000)}
    dense = len(encode_message(update))
    _, _, topk = roundtrip(update, Compression(method="topk", ratio=0.1))
    _, _, int8 = roundtrip(update, Compression(method="int8"))
    _, _, qsgd4 = roundtrip(update, Compression(method="qsgd", bits=4))
    # 10,000 float32 values + a 12,500-byte mask; 1 byte per entry; half a byte per entry + scales
    assert 52_500 < len(topk) < 52_500 + 1024
    assert 100_000 < len(int8) < 100_000 + 1024
    assert 50_000 + 4 * math.ceil(100_000 / QSGD_BUCKET) < len(qsgd4) < 51_000 + 1024
    assert dense / len(int8) > 3.9 and dense / len(qsgd4) > 7.5


def test_error_feedback_carries_what_compression_dropped() -> None:
    compression = Compression(method="topk", ratio=0.3)  # one of three entries per round
    first = {"w": torch.tensor([3.0, 1.0, 0.5])}
    sent, residual, _ = roundtrip(first, compression)
    assert torch.equal(sent["w"], torch.tensor([3.0, 0.0, 0.0]))
    assert residual is not None and torch.allclose(residual["w"], torch.tensor([0.0, 1.0, 0.5]))
    second = {"w": torch.tensor([0.0, 0.8, 0.1])}
    sent, residual, _ = roundtrip(second, compression, residual)
    assert torch.allclose(sent["w"], torch.tensor([0.0, 1.8, 0.0]))  # the carried 1.0 went out now
    assert residual is not None and torch.allclose(residual["w"], torch.tensor([0.0, 0.0, 0.6]))


def test_without_error_feedback_nothing_is_carried() -> None:
    compression = Compression(method="topk", ratio=0.3, error_feedback=False)
    sent, residual, _ = roundtrip({"w": torch.tensor([0.0, 0.8, 0.1])}, compression, {"w": torch.ones(3)})
    assert residual is None
    assert torch.allclose(sent["w"], torch.tensor([0.0, 0.8, 0.0]))  # the stale residual is ignored


def test_error_feedback_applies_to_quantizers_too() -> None:
    update = sample_update()
    sent, residual, _ = roundtrip(update, Compression(method="int8"))
    assert residual is not None
    for key in update:
        assert torch.allclose(sent[key] + residual[key], update[key], atol=1e-7)


@pytest.mark.parametrize("bits", range(1, 17))
def test_code_packing_roundtrips_at_every_width(bits: int) -> None:
    rng = np.random.default_rng(bits)
    codes = rng.integers(0, 2**bits, size=1001)
    packed = pack_codes(codes, bits)
    assert packed.nbytes == math.ceil(1001 * bits / 8)
    assert np.array_equal(unpack_codes(packed, bits, 1001), codes)
