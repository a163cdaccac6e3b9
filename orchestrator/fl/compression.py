"""Update compression: what a client does to its update before upload.

`encode_update` turns an update into wire tensors plus a small JSON header and
returns the residual that error feedback carries into the next round;
`decode_update` inverts it on the server.
"""

from __future__ import annotations

from typing import Any

import torch

from .spec import Compression

Weights = dict[str, torch.Tensor]


def encode_update(
    update: Weights, compression: Compression, residual: Weights | None, generator: torch.Generator
) -> tuple[Weights, dict[str, Any], Weights | None]:
    if compression.method == "none":
        return update, {"method": "none"}, None
    raise ValueError(f"compression '{compression.method}' is not available in this installation")


def decode_update(tensors: Weights, meta: dict[str, Any]) -> Weights:
    if meta.get("method", "none") == "none":
        return tensors
    raise ValueError(f"cannot decode compression '{meta.get('method')}'")
