"""LoRA adapters in federated training, and FLoRA's stacking aggregation.

Naming: a LoRA-adapted linear layer at module path P carries the trainable
factors `P.lora_A.default.weight` (rank x in) and `P.lora_B.default.weight`
(out x rank), peft's names; its output gains `scaling * B @ A @ x` with
`scaling = alpha / rank`.

FLoRA (Wang et al. 2024, "FLoRA: Federated Fine-Tuning Large Language Models with
Heterogeneous Low-Rank Adaptations"): the server stacks the clients' factors,

    A_stack = [A_1; A_2; ...; A_K]                   (sum of ranks x in)
    B_stack = [p_1 s B_1, p_2 s B_2, ..., p_K s B_K]  (out x sum of ranks)

with p_i the clients' data shares and s the scaling, so that
`B_stack @ A_stack == sum_i p_i s B_i @ A_i` exactly, whatever each client's
rank. Averaging A and B separately instead gives `(sum p_i B_i)(sum p_i A_i)`,
which is not the average of the products. The global model is the frozen base
plus the accumulated merged update, kept as factors in the global weights
(`P.base_layer.flora_merged.A` and `.B`): they travel down to every client (the
downlink grows with clients x rank each round) and never back up. Clients
start every round from fresh adapters (a seeded random A, a zero B) that the
server puts in the global weights.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from jobspec import JobSpec

from .aggregation import apply_update, weighted_average
from .profiles import FLOPS_RANGE, client_profile
from .records import FitRes, ServerState, Weights
from .strategy import GradCorrection, Strategy

LORA_A_SUFFIX = ".lora_A.default.weight"
LORA_B_SUFFIX = ".lora_B.default.weight"
MERGED_A_SUFFIX = ".base_layer.flora_merged.A"
MERGED_B_SUFFIX = ".base_layer.flora_merged.B"
RANK_EXTRA = "lora_rank"  # downlink extra: the client's own adapter rank (heterogeneous ranks)


def lora_scaling(spec: JobSpec) -> float:
    """peft's LoRA scaling alpha / rank."""
    return spec.lora.alpha / spec.lora.rank


def adapted_modules(weights: Weights) -> list[str]:
    """Module paths that carry LoRA factors in a weights dict, sorted."""
    return sorted(key[: -len(LORA_A_SUFFIX)] for key in weights if key.endswith(LORA_A_SUFFIX))


def is_adapter_key(key: str) -> bool:
    return key.endswith((LORA_A_SUFFIX, LORA_B_SUFFIX))


def is_merged_key(key: str) -> bool:
    return key.endswith((MERGED_A_SUFFIX, MERGED_B_SUFFIX))


# --- pure maths ----------------------------------------------------------------------


def stack_factors(
    a_factors: list[torch.Tensor], b_factors: list[torch.Tensor], shares: list[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """FLoRA's stacking: (A_stack, B_stack) with B_stack @ A_stack == sum_i shares_i B_i @ A_i.

    A_i is (r_i x in), B_i is (out x r_i); ranks may differ between clients.
    """
    if not a_factors or len(a_factors) != len(b_factors) or len(a_factors) != len(shares):
        raise ValueError("stack_factors needs one A, one B and one share per client")
    a_stack = torch.cat([a.to(torch.float32) for a in a_factors], dim=0)
    b_stack = torch.cat(
        [b.to(torch.float32) * share for b, share in zip(b_factors, shares, strict=True)], dim=1
    )
    return a_stack, b_stack


def compact_factors(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-factor B @ A (out x in) to rank at most min(in, out), leaving the product unchanged.

    Accumulated FLoRA factors grow by the stacked rank every round; past the
    matrix's own dimensions the extra rank carries nothing, so it is folded away.
    """
    q_b, r_b = torch.linalg.qr(b.to(torch.float64))  # B = Qb Rb, Qb orthonormal columns
    q_a, r_a = torch.linalg.qr(a.to(torch.float64).T)  # A^T = Qa Ra
    u, sigma, vh = torch.linalg.svd(r_b @ r_a.T, full_matrices=False)  # B A = Qb (Rb Ra^T) Qa^T
    root = sigma.sqrt()  # rank of the core <= min(in, out, current rank)
    new_b = (q_b @ u) * root
    new_a = root[:, None] * (vh @ q_a.T)
    return new_a.to(a.dtype), new_b.to(b.dtype)


def fresh_lora_a(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """peft's initialisation of a LoRA A factor (Kaiming-uniform with a = sqrt(5)), seeded."""
    fan_in = shape[1]
    bound = 1.0 / math.sqrt(
        fan_in
    )  # kaiming_uniform_(a=sqrt(5)) gives gain sqrt(1/3): bound = 1/sqrt(fan_in)
    return (torch.rand(shape, generator=generator) * 2 - 1) * bound


def client_lora_ranks(spec: JobSpec) -> list[int]:
    """Each client's adapter rank: the job's rank, or (heterogeneous ranks) one set by its device.

    Clients in the fastest third of the simulated compute range (log scale, see
    profiles.py) train rank r, the middle third r/2, the slowest r/4 (at least 1).
    """
    rank = spec.lora.rank
    if not spec.lora.heterogeneous_ranks:
        return [rank] * spec.num_clients
    low, high = (math.log(bound) for bound in FLOPS_RANGE)
    ranks = []
    for client_id in range(spec.num_clients):
        speed = (math.log(client_profile(spec.seed, client_id).flops_per_s) - low) / (high - low)
        ranks.append(rank if speed >= 2 / 3 else max(1, rank // 2) if speed >= 1 / 3 else max(1, rank // 4))
    return ranks


# --- FLoRA's merged update inside a model --------------------------------------------


class MergedDelta(nn.Module):
    """The accumulated FLoRA update of one frozen linear layer, kept as factors B @ A.

    Its rank changes every round, so loading a state dict replaces the buffers
    with the incoming shapes instead of copying into the current ones.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.A: torch.Tensor
        self.B: torch.Tensor
        self.register_buffer("A", torch.zeros(0, in_features))
        self.register_buffer("B", torch.zeros(out_features, 0))

    def attach(self, linear: nn.Module) -> None:
        """Add B @ A @ x to the layer's output (after its bias)."""
        linear.add_module("flora_merged", self)
        linear.register_forward_hook(self._add_delta)

    def _add_delta(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        if self.A.shape[0] == 0:
            return output
        return output + (args[0] @ self.A.T.to(output.dtype)) @ self.B.T.to(output.dtype)

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        for name in ("A", "B"):
            incoming = state_dict.get(prefix + name)
            if incoming is not None:
                setattr(self, name, torch.empty_like(incoming, dtype=torch.float32))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def attach_merged_deltas(model: nn.Module, module_paths: list[str]) -> list[str]:
    """Give each LoRA-adapted layer a MergedDelta on its frozen base; returns the buffer keys."""
    keys = []
    for path in module_paths:
        # Sizes from the adapter factors: a base weight may be stored transposed (GPT-2's Conv1D).
        a_weight = model.get_parameter(path + LORA_A_SUFFIX)
        b_weight = model.get_parameter(path + LORA_B_SUFFIX)
        MergedDelta(a_weight.shape[1], b_weight.shape[0]).attach(model.get_submodule(path + ".base_layer"))
        keys += [path + MERGED_A_SUFFIX, path + MERGED_B_SUFFIX]
    return keys


# --- the strategy ---------------------------------------------------------------------


class FLoRA(Strategy):
    """Stacking aggregation of LoRA adapters; the classification head is averaged as in FedAvg."""

    def downlink_extras(self, *, state: ServerState, client_id: int) -> Weights:
        if not self.spec.lora.heterogeneous_ranks:
            return {}
        return {RANK_EXTRA: torch.tensor([client_lora_ranks(self.spec)[client_id]])}

    def client_grad_correction(self, *, extras: Weights, client_state: Weights) -> GradCorrection | None:
        """A client of rank r_i < r trains only the first r_i components of its adapters."""
        if RANK_EXTRA not in extras:
            return None
        rank = int(extras[RANK_EXTRA][0])

        def keep_own_rank(model: nn.Module) -> None:
            for name, param in model.named_parameters():
                if param.grad is None:
                    continue
                if name.endswith(LORA_A_SUFFIX):
                    param.grad[rank:] = 0
                elif name.endswith(LORA_B_SUFFIX):
                    param.grad[:, rank:] = 0

        return keep_own_rank

    def aggregate_fit(
        self, *, server_round: int, weights: Weights, results: list[FitRes], state: ServerState
    ) -> tuple[Weights, ServerState, dict[str, Any]]:
        assert self.spec.server_learning_rate is not None
        step = self.spec.server_learning_rate
        examples = [r.num_examples for r in results]
        shares = [n / sum(examples) for n in examples]
        ranks = client_lora_ranks(self.spec)
        # The head (and anything else trained that is not a LoRA factor) is averaged as in FedAvg,
        # by the plain weighted mean: stacking is no mean of updates, so the spec refuses DP here.
        averaged = [k for k in results[0].update if not is_adapter_key(k)]
        delta = weighted_average([{k: r.update[k] for k in averaged} for r in results], examples)
        new_weights = {**weights, **apply_update({k: weights[k] for k in averaged}, delta, step)}

        generator = torch.Generator().manual_seed(
            int(np.random.SeedSequence([self.spec.seed, server_round, 7]).generate_state(1)[0])
        )
        scaling = lora_scaling(self.spec)
        merged_rank = 0
        for path in adapted_modules(weights):
            a_key, b_key = path + LORA_A_SUFFIX, path + LORA_B_SUFFIX
            a_factors, b_factors = [], []
            for result in results:
                own = ranks[result.client_id]
                a_local = weights[a_key].to(torch.float32) + result.update[a_key]
                b_local = weights[b_key].to(torch.float32) + result.update[b_key]
                a_factors.append(a_local[:own])
                b_factors.append(b_local[:, :own] * scaling)
            a_stack, b_stack = stack_factors(a_factors, b_factors, [step * share for share in shares])
            merged_a = torch.cat([weights[path + MERGED_A_SUFFIX].to(torch.float32), a_stack], dim=0)
            merged_b = torch.cat([weights[path + MERGED_B_SUFFIX].to(torch.float32), b_stack], dim=1)
            if merged_a.shape[0] > min(merged_a.shape[1], merged_b.shape[0]):
                merged_a, merged_b = compact_factors(merged_a, merged_b)
            new_weights[path + MERGED_A_SUFFIX] = merged_a
            new_weights[path + MERGED_B_SUFFIX] = merged_b
            merged_rank = max(merged_rank, merged_a.shape[0])
            # Fresh adapters for the next round: with B = 0 they add nothing until trained.
            new_weights[a_key] = fresh_lora_a(tuple(weights[a_key].shape), generator).to(weights[a_key].dtype)
            new_weights[b_key] = torch.zeros_like(weights[b_key])
        return new_weights, state, {"flora_merged_rank": merged_rank}
