"""Selection policies on hand-made histories, and the simulated system profiles they read."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from jobspec import JobSpec
from orchestrator.fl.profiles import (
    AVAILABILITY_RANGE,
    DOWN_BPS_RANGE,
    FLOPS_RANGE,
    UP_BPS_RANGE,
    ClientProfile,
    client_profile,
    client_profiles,
    is_online,
    simulated_duration,
    training_flops_per_example,
)
from orchestrator.fl.selection import (
    SELECTION_KEY,
    expected_duration,
    initial_history,
    record_feedback,
    select_clients,
    selection_pool,
)


def history(
    durations: list[float], losses: dict[int, float] | None = None, examples: list[int] | None = None
):
    """A history whose clients need exactly `durations` seconds (all compute, no transfer)."""
    facts = [
        {
            "examples": float((examples or [100] * len(durations))[c]),
            "compute_s": d,
            "down_bps": 1e9,
            "up_bps": 1e9,
        }
        for c, d in enumerate(durations)
    ]
    state = initial_history(facts, bytes_down=0.0, bytes_up=0.0)
    feedback = [
        {"client_id": c, "train_loss": loss, "duration_s": durations[c], "bytes_down": 0.0, "bytes_up": 0.0}
        for c, loss in (losses or {}).items()
    ]
    return record_feedback(state, 1, feedback)


def spec(**kwargs) -> JobSpec:
    return JobSpec(model="mlp", **kwargs)


def test_random_picks_distinct_clients_reproducibly() -> None:
    s = spec(num_clients=10, clients_per_round=4)
    chosen = select_clients(s, 3, {})
    assert len(set(chosen)) == 4 and all(0 <= c < 10 for c in chosen)
    assert chosen == select_clients(s, 3, {})
    assert any(select_clients(s, r, {}) != chosen for r in range(4, 10))
    other_seed = spec(num_clients=10, clients_per_round=4, seed=1)
    assert [select_clients(other_seed, r, {}) for r in range(1, 6)] != [
        select_clients(s, r, {}) for r in range(1, 6)
    ]


def test_round_robin_cycles_through_every_client() -> None:
    s = spec(num_clients=5, clients_per_round=2, selection="round_robin")
    assert [select_clients(s, r, {}) for r in (1, 2, 3, 4)] == [[0, 1], [2, 3], [0, 4], [1, 2]]


def test_power_of_choice_keeps_the_highest_losses_and_explores_unknown_clients() -> None:
    s = spec(
        num_clients=5, clients_per_round=2, selection="power_of_choice", scheduling={"poc_candidates": 5}
    )
    known = history([1.0] * 5, losses={0: 0.1, 1: 2.0, 2: 0.5, 3: 3.0, 4: 0.2})
    assert select_clients(s, 2, {SELECTION_KEY: known}) == [1, 3]
    partly = history([1.0] * 5, losses={0: 0.1, 1: 2.0, 2: 0.5, 3: 3.0})  # client 4 never reported
    assert select_clients(s, 2, {SELECTION_KEY: partly}) == [3, 4]


def test_power_of_choice_draws_candidates_in_proportion_to_data() -> None:
    # d = 1 candidate: the pick is that candidate, drawn in proportion to examples (client 0 holds 99%)
    s = spec(
        num_clients=2, clients_per_round=1, selection="power_of_choice", scheduling={"poc_candidates": 1}
    )
    skewed = history([1.0, 1.0], examples=[990, 10])
    picks = [select_clients(s, r, {SELECTION_KEY: skewed})[0] for r in range(1, 201)]
    assert picks.count(0) > 180


def test_deadline_keeps_clients_expected_to_finish_in_time() -> None:
    durations = [0.5, 3.0, 1.0, 9.0, 2.0]
    s = spec(num_clients=5, clients_per_round=5, selection="deadline", scheduling={"deadline_s": 2.0})
    assert select_clients(s, 1, {SELECTION_KEY: history(durations)}) == [0, 2, 4]
    default = spec(num_clients=5, clients_per_round=5, selection="deadline")  # median expected time: 2.0
    assert select_clients(default, 1, {SELECTION_KEY: history(durations)}) == [0, 2, 4]
    tight = spec(num_clients=5, clients_per_round=5, selection="deadline", scheduling={"deadline_s": 0.1})
    assert select_clients(tight, 1, {SELECTION_KEY: history(durations)}) == [0]  # nobody fits: the fastest
    few = spec(num_clients=5, clients_per_round=2, selection="deadline", scheduling={"deadline_s": 2.0})
    assert set(select_clients(few, 1, {SELECTION_KEY: history(durations)})) < {0, 2, 4}


def test_expected_duration_adds_transfer_at_the_profile_bandwidth() -> None:
    facts = [{"examples": 1.0, "compute_s": 0.5, "down_bps": 8e6, "up_bps": 8e5}]
    state = initial_history(facts, bytes_down=1e6, bytes_up=1e5)
    assert expected_duration(state, 0) == pytest.approx(0.5 + 1.0 + 1.0)


def test_oort_prefers_useful_fast_clients_and_penalises_stragglers() -> None:
    s = spec(num_clients=4, clients_per_round=2, selection="oort", scheduling={"oort_exploration": 0.0})
    # all tried; client 3 has the highest loss but takes 10x the preferred duration (median 1.0)
    state = history([1.0, 1.0, 1.0, 10.0], losses={0: 0.1, 1: 1.0, 2: 0.8, 3: 5.0})
    assert select_clients(s, 2, {SELECTION_KEY: state}) == [1, 2]
    fast = history([1.0, 1.0, 1.0, 1.0], losses={0: 0.1, 1: 1.0, 2: 0.8, 3: 5.0})
    assert select_clients(s, 2, {SELECTION_KEY: fast}) == [1, 3]


def test_oort_explores_untried_clients_to_fill_a_round() -> None:
    s = spec(num_clients=6, clients_per_round=3, selection="oort", scheduling={"oort_exploration": 0.0})
    state = history([1.0] * 6, losses={0: 1.0})
    chosen = select_clients(s, 2, {SELECTION_KEY: state})
    assert 0 in chosen and len(chosen) == 3  # one exploited, two explored
    first_round = select_clients(s, 1, {SELECTION_KEY: history([1.0] * 6)})
    assert len(first_round) == 3


def test_oort_explores_faster_untried_clients_more_often() -> None:
    s = spec(num_clients=2, clients_per_round=1, selection="oort")
    state = history([0.1, 10.0])
    picks = [select_clients(s, r, {SELECTION_KEY: state})[0] for r in range(1, 101)]
    assert picks.count(0) > 90  # speed 10 vs 0.1: picked with probability ~0.99


def test_record_feedback_keeps_losses_rounds_and_payload_sizes() -> None:
    state = history([1.0, 2.0])
    state = record_feedback(
        state,
        4,
        [
            {"client_id": 1, "train_loss": 0.7, "duration_s": 2.5, "bytes_down": 100, "bytes_up": 10},
            {"client_id": 0, "train_loss": math.nan, "duration_s": 1.5, "bytes_down": 100, "bytes_up": 30},
        ],
    )
    assert state["clients"]["1"]["loss"] == 0.7 and state["clients"]["1"]["round"] == 4
    assert "loss" not in state["clients"]["0"]  # a NaN loss is no information
    assert state["bytes_up"] == 20 and state["bytes_down"] == 100


def test_profiles_are_seeded_per_client_and_in_range() -> None:
    assert client_profiles(7, 5) == client_profiles(7, 8)[:5]  # adding clients changes nobody else
    assert client_profiles(7, 5) != client_profiles(8, 5)
    for profile in client_profiles(3, 50):
        assert FLOPS_RANGE[0] <= profile.flops_per_s <= FLOPS_RANGE[1]
        assert DOWN_BPS_RANGE[0] <= profile.down_bps <= DOWN_BPS_RANGE[1]
        assert UP_BPS_RANGE[0] <= profile.up_bps <= UP_BPS_RANGE[1]
        assert AVAILABILITY_RANGE[0] <= profile.availability <= AVAILABILITY_RANGE[1]
    speeds = [p.flops_per_s for p in client_profiles(3, 50)]
    assert max(speeds) / min(speeds) > 10  # heterogeneous enough for scheduling to matter


def test_simulated_duration_is_download_plus_training_plus_upload() -> None:
    profile = ClientProfile(flops_per_s=1e9, down_bps=8e6, up_bps=4e6, availability=1.0)
    # 2e9 FLOPs -> 2 s; 1 MB down at 8 Mbit/s -> 1 s; 1 MB up at 4 Mbit/s -> 2 s
    assert simulated_duration(profile, train_flops=2e9, bytes_down=1e6, bytes_up=1e6) == pytest.approx(5.0)


def test_training_flops_are_counted_from_the_model() -> None:
    model = nn.Linear(64, 10)
    flops = training_flops_per_example(model, torch.zeros(1, 64), torch.tensor([3]))
    forward = 2 * 64 * 10
    assert 2 * forward <= flops <= 3 * forward  # backward costs one or two forward passes
    assert model.weight.grad is None  # counting leaves no gradients behind


def test_availability_limits_the_pool_to_online_clients() -> None:
    s = spec(num_clients=20, clients_per_round=20, scheduling={"availability": True})
    pools = [selection_pool(s, r) for r in range(1, 31)]
    assert all(
        pool == [c for c in range(20) if is_online(s.seed, r, c)] or len(pool) == 1
        for r, pool in enumerate(pools, 1)
    )
    sizes = [len(pool) for pool in pools]
    assert min(sizes) > 0 and max(sizes) <= 20 and np.mean(sizes) < 19
    online_rate = np.mean([is_online(0, r, 5) for r in range(1, 2001)])
    assert online_rate == pytest.approx(client_profile(0, 5).availability, abs=0.04)
    assert selection_pool(spec(num_clients=20), 1) == list(range(20))  # off by default
    chosen = select_clients(s, 4, {})
    assert chosen == pools[3]
