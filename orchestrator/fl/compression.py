"""Update compression: what a client does to its update before upload.

`encode_update` turns an update into wire tensors plus a small JSON header and
returns the residual that error feedback carries into the next round;
`decode_update` inverts it on the server. Every byte of a compressed update
(values, indices, scales, the layout header) travels in the real payload, so
the byte counts are the real cost.

A compressed update is flattened (tensors in key order, their names and shapes
in the header's `layout`) and encoded as a whole:

- `topk`: per tensor, the `ratio` largest-magnitude entries (at least one) as
  float32 values, their positions as a bitmask over the flat update or as
  indices in the narrowest unsigned integer type, whichever is smaller.
- `int8`: linear quantization, one float32 scale per tensor (max |x| / 127),
  values rounded to the nearest of 255 levels.
- `qsgd` (Alistarh et al. 2017): stochastic, unbiased rounding onto `bits`-bit
  levels, in buckets of `QSGD_BUCKET` entries. A bucket is scaled by its largest
  magnitude rather than its L2 norm: still unbiased, with far lower variance at
  the same bit count. For bits >= 2 the grid is {-s, ..., s} / s with
  s = 2^(bits-1) - 1 (zero is exact); one bit gives the grid {-1, +1}, still
  unbiased. Codes are bit-packed.

Error feedback (Seide et al. 2014; Karimireddy et al. 2019): the client adds the
residual it kept from its last upload before compressing, and keeps what the
compression lost this time (the corrected update minus what the server decodes).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from jobspec import Compression

Weights = dict[str, torch.Tensor]

INT8_LEVELS = 127
QSGD_BUCKET = 512
_INDEX_TYPES = (np.uint8, np.uint16, np.uint32, np.uint64)


def encode_update(
    update: Weights, compression: Compression, residual: Weights | None, generator: torch.Generator
) -> tuple[Weights, dict[str, Any], Weights | None]:
    """(wire tensors, header, residual to keep; None without error feedback)."""
    if compression.method == "none":
        return update, {"method": "none"}, None
    keys = list(update)
    corrected = dict(update)
    if compression.error_feedback and residual:
        corrected = {key: update[key] + residual[key] if key in residual else update[key] for key in keys}
    flat = torch.cat([corrected[key].reshape(-1).to(torch.float32) for key in keys])
    sizes = [corrected[key].numel() for key in keys]
    layout = [[key, list(corrected[key].shape)] for key in keys]
    if compression.method == "topk":
        assert compression.ratio is not None
        tensors, header = encode_topk(flat, sizes, compression.ratio)
    elif compression.method == "int8":
        tensors, header = encode_int8(flat, sizes)
    elif compression.method == "qsgd":
        assert compression.bits is not None
        tensors, header = encode_qsgd(flat, sizes, compression.bits, generator)
    else:
        raise ValueError(f"compression '{compression.method}' is not available in this installation")
    meta = {"method": compression.method, "layout": layout, **header}
    if not compression.error_feedback:
        return tensors, meta, None
    sent = decode_flat(tensors, meta, len(flat))
    return tensors, meta, unflatten(flat - sent, layout)


def decode_update(tensors: Weights, meta: dict[str, Any]) -> Weights:
    if meta.get("method", "none") == "none":
        return tensors
    layout = meta["layout"]
    total = sum(math.prod(shape) for _, shape in layout)
    return unflatten(decode_flat(tensors, meta, total), layout)


def decode_flat(tensors: Weights, meta: dict[str, Any], total: int) -> torch.Tensor:
    method = meta["method"]
    if method == "topk":
        return decode_topk(tensors, meta, total)
    if method == "int8":
        return decode_int8(tensors, meta)
    if method == "qsgd":
        return decode_qsgd(tensors, meta, total)
    raise ValueError(f"cannot decode compression '{method}'")


def unflatten(flat: torch.Tensor, layout: list[list[Any]]) -> Weights:
    out: Weights = {}
    offset = 0
    for key, shape in layout:
        size = math.prod(shape)
        out[key] = flat[offset : offset + size].reshape(shape).clone()
        offset += size
    return out


def segment_ids(sizes: list[int], segment: int | None = None) -> tuple[torch.Tensor, int]:
    """Per flat entry, the id of its tensor (or of its bucket of `segment` entries within its tensor)."""
    ids, count = [], 0
    for size in sizes:
        per = math.ceil(size / segment) if segment else 1
        local = torch.arange(size) // segment if segment else torch.zeros(size, dtype=torch.int64)
        ids.append(local + count)
        count += per
    return torch.cat(ids), count


def segment_max_abs(flat: torch.Tensor, ids: torch.Tensor, count: int) -> torch.Tensor:
    out = torch.zeros(count, dtype=torch.float32)
    return out.scatter_reduce_(0, ids, flat.abs(), reduce="amax", include_self=True)


# --- top-k ----------------------------------------------------------------------------


def topk_positions(flat: torch.Tensor, sizes: list[int], ratio: float) -> torch.Tensor:
    """Sorted flat positions of the largest-magnitude `ratio` of each tensor's entries."""
    positions, offset = [], 0
    for size in sizes:
        keep = min(size, max(1, math.ceil(ratio * size - 1e-9)))
        segment = flat[offset : offset + size].abs()
        positions.append(torch.topk(segment, keep, sorted=False).indices + offset)
        offset += size
    return torch.sort(torch.cat(positions)).values


def narrowest_index_type(largest: int) -> type[np.unsignedinteger[Any]]:
    for dtype in _INDEX_TYPES:
        if largest <= np.iinfo(dtype).max:
            return dtype
    raise ValueError(f"index {largest} does not fit 64 bits")


def encode_topk(flat: torch.Tensor, sizes: list[int], ratio: float) -> tuple[Weights, dict[str, Any]]:
    positions = topk_positions(flat, sizes, ratio)
    values = flat[positions].clone()
    total = len(flat)
    index_type = narrowest_index_type(total - 1)
    mask_bytes = math.ceil(total / 8)
    index_bytes = len(positions) * np.dtype(index_type).itemsize
    if mask_bytes <= index_bytes:
        mask = np.zeros(total, dtype=bool)
        mask[positions.numpy()] = True
        return {"values": values, "mask": torch.from_numpy(np.packbits(mask))}, {"index": "mask"}
    index = positions.numpy().astype(index_type)
    return {"values": values, "index": torch.from_numpy(index)}, {"index": np.dtype(index_type).name}


def decode_topk(tensors: Weights, meta: dict[str, Any], total: int) -> torch.Tensor:
    if meta["index"] == "mask":
        bits = np.unpackbits(tensors["mask"].numpy(), count=total).astype(bool)
        positions = torch.from_numpy(np.flatnonzero(bits))
    else:
        positions = torch.from_numpy(tensors["index"].numpy().astype(np.int64))
    flat = torch.zeros(total, dtype=torch.float32)
    flat[positions] = tensors["values"].to(torch.float32)
    return flat


# --- int8 -----------------------------------------------------------------------------


def encode_int8(flat: torch.Tensor, sizes: list[int]) -> tuple[Weights, dict[str, Any]]:
    ids, count = segment_ids(sizes)
    scales = segment_max_abs(flat, ids, count) / INT8_LEVELS
    safe = torch.where(scales > 0, scales, torch.ones_like(scales))
    codes = torch.round(flat / safe[ids]).clamp(-INT8_LEVELS, INT8_LEVELS).to(torch.int8)
    return {"codes": codes, "scales": scales}, {"sizes": sizes}


def decode_int8(tensors: Weights, meta: dict[str, Any]) -> torch.Tensor:
    ids, _ = segment_ids(meta["sizes"])
    return tensors["codes"].to(torch.float32) * tensors["scales"][ids]


# --- QSGD -----------------------------------------------------------------------------


def qsgd_grid_points(bits: int) -> int:
    """Number of levels on [-1, 1]: odd (zero included) for bits >= 2; {-1, +1} for one bit."""
    return max(2, 2**bits - 1)


def encode_qsgd(
    flat: torch.Tensor, sizes: list[int], bits: int, generator: torch.Generator
) -> tuple[Weights, dict[str, Any]]:
    ids, count = segment_ids(sizes, QSGD_BUCKET)
    scales = segment_max_abs(flat, ids, count)
    safe = torch.where(scales > 0, scales, torch.ones_like(scales))
    steps = qsgd_grid_points(bits) - 1
    position = (flat / safe[ids] + 1.0) * (steps / 2)  # in [0, steps]
    lower = torch.floor(position)
    up = torch.rand(position.shape, generator=generator) < (position - lower)
    codes = (lower + up.to(lower.dtype)).clamp(0, steps).to(torch.int64)
    return (
        {"codes": torch.from_numpy(pack_codes(codes.numpy(), bits)), "scales": scales},
        {"bits": bits, "bucket": QSGD_BUCKET, "sizes": sizes},
    )


def decode_qsgd(tensors: Weights, meta: dict[str, Any], total: int) -> torch.Tensor:
    bits = int(meta["bits"])
    steps = qsgd_grid_points(bits) - 1
    codes = torch.from_numpy(unpack_codes(tensors["codes"].numpy(), bits, total).astype(np.int64))
    ids, _ = segment_ids(meta["sizes"], int(meta["bucket"]))
    return (codes.to(torch.float32) * (2.0 / steps) - 1.0) * tensors["scales"][ids]


def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned codes below 2**bits, packed `bits` to an entry (little-endian bit order)."""
    if bits == 8:
        return codes.astype(np.uint8)
    if bits == 16:
        return codes.astype(np.uint16)
    planes = (codes[:, None] >> np.arange(bits)) & 1
    return np.packbits(planes.astype(np.uint8).reshape(-1), bitorder="little")


def unpack_codes(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    if bits in (8, 16):
        return packed.astype(np.int64)
    planes = np.unpackbits(packed, count=count * bits, bitorder="little").reshape(count, bits)
    return planes.astype(np.int64) @ (1 << np.arange(bits, dtype=np.int64))
