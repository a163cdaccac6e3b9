"""The wire format of every message between server and clients.

A message is a safetensors file: named tensors plus a small JSON header. Byte
counts in Flotilla are always `len()` of these real payloads, never a formula.
"""

from __future__ import annotations

import json
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

Tensors = dict[str, torch.Tensor]

_META_KEY = "flotilla"


def encode_message(tensors: Tensors, meta: dict[str, Any] | None = None) -> bytes:
    contiguous = {name: tensor.detach().contiguous() for name, tensor in tensors.items()}
    return st_save(contiguous, metadata={_META_KEY: json.dumps(meta or {})})


def decode_message(payload: bytes) -> tuple[Tensors, dict[str, Any]]:
    tensors = st_load(payload)
    header_len = int.from_bytes(payload[:8], "little")
    header = json.loads(payload[8 : 8 + header_len])
    meta = json.loads(header.get("__metadata__", {}).get(_META_KEY, "{}"))
    return tensors, meta
