"""FLoRA's stacking maths, the merged update's module and the strategy, on small tensors."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from jobspec import JobSpec, spec_errors
from orchestrator.fl.lora import (
    LORA_A_SUFFIX,
    LORA_B_SUFFIX,
    MERGED_A_SUFFIX,
    MERGED_B_SUFFIX,
    RANK_EXTRA,
    FLoRA,
    MergedDelta,
    client_lora_ranks,
    compact_factors,
    stack_factors,
)
from orchestrator.fl.profiles import client_profile
from orchestrator.fl.records import FitRes, ServerState
from orchestrator.fl.strategies import STRATEGIES


def random_factors(generator: torch.Generator, ranks: list[int], d_in: int = 6, d_out: int = 5):
    a = [torch.randn(r, d_in, generator=generator, dtype=torch.float64) for r in ranks]
    b = [torch.randn(d_out, r, generator=generator, dtype=torch.float64) for r in ranks]
    return a, b


def weighted_sum_of_products(a, b, shares):
    return sum(share * (b_i @ a_i) for a_i, b_i, share in zip(a, b, shares, strict=True))


@pytest.mark.parametrize("ranks", [[2, 2, 2], [1, 3, 4]])
def test_stacked_product_equals_weighted_sum_of_client_products(ranks):
    generator = torch.Generator().manual_seed(0)
    a, b = random_factors(generator, ranks)
    shares = [0.5, 0.3, 0.2]
    a_stack, b_stack = stack_factors(a, b, shares)
    assert a_stack.shape == (sum(ranks), 6) and b_stack.shape == (5, sum(ranks))
    expected = weighted_sum_of_products(a, b, shares)
    assert torch.allclose((b_stack @ a_stack).double(), expected, atol=1e-5)


def test_naive_averaging_of_a_and_b_is_not_the_average_product():
    generator = torch.Generator().manual_seed(1)
    a, b = random_factors(generator, [2, 2, 2])
    shares = [0.5, 0.3, 0.2]
    a_mean = sum(s * a_i for a_i, s in zip(a, shares, strict=True))
    b_mean = sum(s * b_i for b_i, s in zip(b, shares, strict=True))
    error = (b_mean @ a_mean - weighted_sum_of_products(a, b, shares)).abs().max()
    assert error > 0.1


def test_compact_factors_keeps_the_product_and_bounds_the_rank():
    generator = torch.Generator().manual_seed(2)
    a, b = random_factors(generator, [5, 4])  # rank 9 > min(6, 5)
    a_stack, b_stack = stack_factors(a, b, [0.6, 0.4])
    small_a, small_b = compact_factors(a_stack, b_stack)
    assert small_a.shape[0] <= 5 and small_b.shape[1] == small_a.shape[0]
    assert torch.allclose(small_b @ small_a, b_stack @ a_stack, atol=1e-5)


def test_merged_delta_adds_its_product_and_loads_any_rank():
    linear = nn.Linear(4, 3)
    merged = MergedDelta(4, 3)
    merged.attach(linear)
    x = torch.randn(2, 4)
    plain = x @ linear.weight.T + linear.bias
    assert torch.allclose(linear(x), plain)  # rank 0: no change
    a, b = torch.randn(5, 4), torch.randn(3, 5)
    linear.load_state_dict(
        {"weight": linear.weight, "bias": linear.bias, "flora_merged.A": a, "flora_merged.B": b}
    )
    assert merged.A.shape == (5, 4)
    assert torch.allclose(linear(x), plain + x @ (b @ a).T, atol=1e-5)


def test_client_ranks_are_seeded_and_at_most_the_job_rank():
    plain = JobSpec.model_validate({"dataset": "sst2", "num_clients": 6, "algorithm": "flora"})
    assert client_lora_ranks(plain) == [8] * 6
    spec = JobSpec.model_validate(
        {"dataset": "sst2", "num_clients": 40, "algorithm": "flora", "lora": {"heterogeneous_ranks": True}}
    )
    ranks = client_lora_ranks(spec)
    assert ranks == client_lora_ranks(spec)
    assert set(ranks) == {2, 4, 8}
    speeds = [client_profile(spec.seed, client).flops_per_s for client in range(40)]
    slowest, fastest = speeds.index(min(speeds)), speeds.index(max(speeds))
    assert ranks[slowest] == 2 and ranks[fastest] == 8  # slower devices train smaller adapters


D_IN, D_OUT = 24, 20  # larger than two clients' stacked ranks, so nothing is compacted


def flora_weights(generator: torch.Generator, rank: int = 4) -> dict[str, torch.Tensor]:
    path = "enc.q"
    return {
        path + LORA_A_SUFFIX: torch.randn(rank, D_IN, generator=generator),
        path + LORA_B_SUFFIX: torch.zeros(D_OUT, rank),
        path + MERGED_A_SUFFIX: torch.zeros(0, D_IN),
        path + MERGED_B_SUFFIX: torch.zeros(D_OUT, 0),
        "head.weight": torch.zeros(2, 5),
    }


def client_result(client_id: int, examples: int, generator: torch.Generator, rank: int = 4) -> FitRes:
    update = {
        "enc.q" + LORA_A_SUFFIX: torch.randn(rank, D_IN, generator=generator),
        "enc.q" + LORA_B_SUFFIX: torch.randn(D_OUT, rank, generator=generator),
        "head.weight": torch.full((2, 5), float(client_id)),
    }
    return FitRes(client_id=client_id, num_examples=examples, train_loss=0.0, update=update)


def test_flora_strategy_accumulates_the_exact_weighted_update():
    assert STRATEGIES["flora"] is FLoRA
    spec = JobSpec.model_validate({"dataset": "sst2", "num_clients": 2, "algorithm": "flora"})
    scaling = spec.lora.alpha / spec.lora.rank
    generator = torch.Generator().manual_seed(3)
    weights = flora_weights(generator, rank=8)
    results = [client_result(0, 30, generator, 8), client_result(1, 10, generator, 8)]
    strategy = FLoRA(spec)
    new, _, metrics = strategy.aggregate_fit(
        server_round=1, weights=weights, results=results, state=ServerState()
    )

    def local(key, result):
        return weights[key] + result.update[key]

    expected = sum(
        share * scaling * local("enc.q" + LORA_B_SUFFIX, r) @ local("enc.q" + LORA_A_SUFFIX, r)
        for r, share in zip(results, [0.75, 0.25], strict=True)
    )
    merged = new["enc.q" + MERGED_B_SUFFIX] @ new["enc.q" + MERGED_A_SUFFIX]
    assert torch.allclose(merged, expected, atol=1e-5)
    assert metrics["flora_merged_rank"] == 16  # downlink grows with clients x rank
    assert torch.equal(new["enc.q" + LORA_B_SUFFIX], torch.zeros(D_OUT, 8))  # fresh adapters
    assert not torch.equal(new["enc.q" + LORA_A_SUFFIX], weights["enc.q" + LORA_A_SUFFIX])
    assert torch.allclose(new["head.weight"], torch.full((2, 5), 0.25))  # FedAvg on the head

    # A second round stacks on top: the merged update is the sum over rounds.
    second = [client_result(0, 30, generator, 8), client_result(1, 10, generator, 8)]
    newer, _, _ = strategy.aggregate_fit(server_round=2, weights=new, results=second, state=ServerState())
    round_two = sum(
        share
        * scaling
        * (new["enc.q" + LORA_B_SUFFIX] + r.update["enc.q" + LORA_B_SUFFIX])
        @ (new["enc.q" + LORA_A_SUFFIX] + r.update["enc.q" + LORA_A_SUFFIX])
        for r, share in zip(second, [0.75, 0.25], strict=True)
    )
    total = newer["enc.q" + MERGED_B_SUFFIX] @ newer["enc.q" + MERGED_A_SUFFIX]
    assert torch.allclose(total, expected + round_two, atol=1e-4)


def test_heterogeneous_ranks_stack_only_each_clients_own_components():
    spec = JobSpec.model_validate(
        {"dataset": "sst2", "num_clients": 40, "algorithm": "flora", "lora": {"heterogeneous_ranks": True}}
    )
    ranks = client_lora_ranks(spec)
    small, large = ranks.index(2), ranks.index(8)
    strategy = FLoRA(spec)
    assert strategy.downlink_extras(state=ServerState(), client_id=small)[RANK_EXTRA].item() == 2
    generator = torch.Generator().manual_seed(4)
    weights = flora_weights(generator, rank=8)
    results = [client_result(small, 10, generator, 8), client_result(large, 10, generator, 8)]
    new, _, metrics = strategy.aggregate_fit(
        server_round=1, weights=weights, results=results, state=ServerState()
    )
    assert metrics["flora_merged_rank"] == 2 + 8


def test_rank_mask_zeroes_gradients_beyond_the_clients_rank():
    spec = JobSpec.model_validate(
        {"dataset": "sst2", "num_clients": 2, "algorithm": "flora", "lora": {"heterogeneous_ranks": True}}
    )
    correction = FLoRA(spec).client_grad_correction(extras={RANK_EXTRA: torch.tensor([2])}, client_state={})
    assert correction is not None
    a_layer, b_layer = nn.Linear(6, 4, bias=False), nn.Linear(4, 5, bias=False)
    holder = nn.Module()
    holder.lora_A = nn.ModuleDict({"default": a_layer})
    holder.lora_B = nn.ModuleDict({"default": b_layer})
    model = nn.Module()
    model.q = holder
    for param in model.parameters():
        param.grad = torch.ones_like(param)
    correction(model)
    a_grad, b_grad = a_layer.weight.grad, b_layer.weight.grad
    assert a_grad is not None and b_grad is not None
    assert a_grad[:2].eq(1).all() and a_grad[2:].eq(0).all()
    assert b_grad[:, :2].eq(1).all() and b_grad[:, 2:].eq(0).all()
    assert FLoRA(spec).client_grad_correction(extras={}, client_state={}) is None


def test_heterogeneous_ranks_need_flora():
    with pytest.raises(ValidationError) as caught:
        JobSpec.model_validate({"dataset": "sst2", "lora": {"heterogeneous_ranks": True}})
    assert spec_errors(caught.value)[0]["field"] == "lora.heterogeneous_ranks"
