"""Every strategy against a small example computed by hand."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest
import torch
from torch import nn

from jobspec import JobSpec
from orchestrator.fl.aggregation import coordinate_median, krum_scores, trimmed_mean
from orchestrator.fl.privacy import PrivateMean
from orchestrator.fl.records import FitRes, ServerState, Weights
from orchestrator.fl.strategies import STRATEGIES, strategy_for
from orchestrator.fl.strategies.fedavg import FedAvgM
from orchestrator.fl.strategies.robust import Median
from orchestrator.fl.strategy import WEIGHTED_MEAN


def make(**kwargs: Any) -> JobSpec:
    return JobSpec.model_validate(kwargs)


def result(client_id: int, update: list[float], examples: int = 1, **extras: list[float]) -> FitRes:
    return FitRes(
        client_id=client_id,
        num_examples=examples,
        train_loss=0.5,
        update={"w": torch.tensor(update)},
        extras={k: torch.tensor(v) for k, v in extras.items()},
    )


def aggregate(spec: JobSpec, weights: list[float], results: list[FitRes], state: ServerState | None = None):
    strategy = strategy_for(spec)
    start = {"w": torch.tensor(weights)}
    state = state or strategy.initialize(start)
    return strategy.aggregate_fit(server_round=1, weights=start, results=results, state=state)


def test_every_contract_algorithm_but_flora_is_registered() -> None:
    expected = {
        "fedavg", "fedprox", "fedavgm", "fedadam", "fedyogi", "fedadagrad",
        "scaffold", "krum", "median", "trimmed_mean",
    }  # fmt: skip
    assert expected <= set(STRATEGIES)


def test_fedavg_weights_by_examples_and_applies_the_server_learning_rate() -> None:
    spec = make(algorithm="fedavg", server_learning_rate=0.5)
    # mean update (1*[3] + 3*[1]) / 4 = [1.5]; w = 1 + 0.5 * 1.5
    new, _, _ = aggregate(spec, [1.0], [result(0, [3.0], 1), result(1, [1.0], 3)])
    assert torch.allclose(new["w"], torch.tensor([1.75]))


def test_fedprox_sends_its_proximal_weight_to_clients() -> None:
    spec = make(algorithm="fedprox", proximal_mu=0.3)
    assert strategy_for(spec).fit_config(1, 0)["proximal_mu"] == 0.3
    assert strategy_for(make(algorithm="fedavg")).fit_config(1, 0)["proximal_mu"] == 0.0


def test_fedavgm_accumulates_server_momentum() -> None:
    spec = make(algorithm="fedavgm", server_momentum=0.9)
    results = [result(0, [2.0]), result(1, [4.0])]  # mean update 3
    strategy = strategy_for(spec)
    weights = {"w": torch.tensor([1.0])}
    state = strategy.initialize(weights)
    weights, state, _ = strategy.aggregate_fit(server_round=1, weights=weights, results=results, state=state)
    assert torch.allclose(weights["w"], torch.tensor([4.0]))  # v = 3, w = 1 + 3
    weights, state, _ = strategy.aggregate_fit(server_round=2, weights=weights, results=results, state=state)
    assert torch.allclose(weights["w"], torch.tensor([9.7]))  # v = 0.9 * 3 + 3 = 5.7


@pytest.mark.parametrize(
    ("algorithm", "second_moments"),
    [
        # v0 = tau^2 = 1e-6; round 1 delta 3, round 2 delta 0.1 (beta2 = 0.99)
        ("fedadam", (0.99e-6 + 0.01 * 9, 0.99 * (0.99e-6 + 0.09) + 0.01 * 0.01)),
        # yogi: v - (1 - beta2) d^2 sign(v - d^2): grows in round 1 (v < 9), shrinks in round 2 (v > 0.01)
        ("fedyogi", (1e-6 + 0.01 * 9, 1e-6 + 0.09 - 0.01 * 0.01)),
        ("fedadagrad", (1e-6 + 9, 1e-6 + 9 + 0.01)),
    ],
)
def test_adaptive_server_optimizers_follow_reddi_et_al(
    algorithm: str, second_moments: tuple[float, float]
) -> None:
    spec = make(algorithm=algorithm, server_learning_rate=0.01)
    tau, lr = 1e-3, 0.01
    strategy = strategy_for(spec)
    weights = {"w": torch.tensor([1.0], dtype=torch.float64)}
    state = strategy.initialize(weights)
    expected_w = 1.0
    first = 0.0
    for server_round, (delta, second) in enumerate(zip((3.0, 0.1), second_moments, strict=True), start=1):
        results = [FitRes(0, 1, 0.5, {"w": torch.tensor([delta], dtype=torch.float64)})]
        weights, state, _ = strategy.aggregate_fit(
            server_round=server_round, weights=weights, results=results, state=state
        )
        first = 0.9 * first + 0.1 * delta
        expected_w += lr * first / (math.sqrt(second) + tau)
        assert float(state.tensors["m/w"]) == pytest.approx(first, rel=1e-9)
        assert float(state.tensors["v/w"]) == pytest.approx(second, rel=1e-9)
        assert float(weights["w"]) == pytest.approx(expected_w, rel=1e-9)


def test_server_optimizers_average_batchnorm_statistics_instead_of_stepping_them() -> None:
    spec = make(algorithm="fedadam")
    strategy = strategy_for(spec)
    weights = {"bn.running_mean": torch.tensor([1.0]), "w": torch.tensor([0.0])}
    update = {"bn.running_mean": torch.tensor([0.5]), "w": torch.tensor([3.0])}
    new, state, _ = strategy.aggregate_fit(
        server_round=1,
        weights=weights,
        results=[FitRes(0, 1, 0.5, update)],
        state=strategy.initialize(weights),
    )
    assert torch.allclose(new["bn.running_mean"], torch.tensor([1.5]))
    assert "m/bn.running_mean" not in state.tensors


def test_scaffold_server_sends_its_control_and_moves_it_by_the_clients_changes() -> None:
    spec = make(algorithm="scaffold", num_clients=4)
    strategy = strategy_for(spec)
    weights = {"w": torch.tensor([1.0])}
    state = strategy.initialize(weights)
    assert torch.equal(strategy.downlink_extras(state=state, client_id=0)["w"], torch.tensor([0.0]))
    state = ServerState(tensors={"c/w": torch.tensor([0.5])})
    results = [result(0, [0.2], 1, w=[0.5]), result(1, [0.4], 1, w=[1.5])]
    new, state, _ = strategy.aggregate_fit(server_round=1, weights=weights, results=results, state=state)
    assert torch.allclose(new["w"], torch.tensor([1.3]))  # x + mean update
    assert torch.allclose(state.tensors["c/w"], torch.tensor([1.0]))  # c + (0.5 + 1.5) / num_clients


def test_scaffold_client_updates_its_control_variate_option_two() -> None:
    strategy = strategy_for(make(algorithm="scaffold", learning_rate=0.1))
    upload, state = strategy.client_extras(
        global_weights={"w": torch.tensor([1.0])},
        local_weights={"w": torch.tensor([0.8])},
        extras={"w": torch.tensor([0.5])},  # server control c
        client_state={"scaffold/w": torch.tensor([0.2]), "ef/w": torch.tensor([9.0])},
        steps=2,
        learning_rate=0.1,
    )
    # c_i+ = c_i - c + (x - y) / (K lr) = 0.2 - 0.5 + 0.2 / 0.2 = 0.7; the upload is c_i+ - c_i
    assert torch.allclose(state["scaffold/w"], torch.tensor([0.7]))
    assert torch.allclose(upload["w"], torch.tensor([0.5]))
    assert torch.equal(state["ef/w"], torch.tensor([9.0]))  # other client state is kept


def test_scaffold_corrects_every_local_step_by_the_control_difference() -> None:
    strategy = strategy_for(make(algorithm="scaffold", learning_rate=0.1))
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    correct = strategy.client_grad_correction(
        extras={"weight": torch.tensor([[0.5]])}, client_state={"scaffold/weight": torch.tensor([[0.2]])}
    )
    assert correct is not None
    correct(model)
    # w -= lr * (c - c_i) = 1 - 0.1 * 0.3
    assert torch.allclose(model.weight, torch.tensor([[0.97]]))


def test_krum_picks_the_update_closest_to_its_neighbours() -> None:
    updates = [{"w": torch.tensor([v])} for v in (0.0, 0.1, 0.2, 10.0)]
    # f = 0, so each score sums the 2 nearest squared distances: 0.05, 0.02, 0.05, 194.05
    scores = krum_scores(updates, num_byzantine=0)
    assert torch.allclose(scores, torch.tensor([0.05, 0.02, 0.05, 194.05], dtype=torch.float64))
    spec = make(algorithm="krum", robust={"trim_fraction": 0.2})
    new, _, metrics = aggregate(spec, [1.0], [result(i, [v]) for i, v in enumerate((0.0, 0.1, 0.2, 10.0))])
    assert torch.allclose(new["w"], torch.tensor([1.1])) and metrics["krum_client"] == 1


def test_median_is_coordinate_wise_with_the_middle_pair_averaged() -> None:
    odd = coordinate_median(
        [{"w": torch.tensor([1.0, -1.0])}, {"w": torch.tensor([5.0, 0.0])}, {"w": torch.tensor([2.0, 9.0])}]
    )
    assert torch.equal(odd["w"], torch.tensor([2.0, 0.0]))
    even = coordinate_median([{"w": torch.tensor([v])} for v in (1.0, 2.0, 10.0, 4.0)])
    assert torch.equal(even["w"], torch.tensor([3.0]))
    new, _, _ = aggregate(
        make(algorithm="median"),
        [0.0],
        [result(i, [v], 100 * i + 1) for i, v in enumerate((1.0, 5.0, 2.0))],
    )
    assert torch.equal(new["w"], torch.tensor([2.0]))  # unweighted: example counts do not matter


def test_trimmed_mean_drops_the_extremes_of_each_coordinate() -> None:
    updates = [{"w": torch.tensor([v, -v])} for v in (1.0, 2.0, 3.0, 4.0, 100.0)]
    assert torch.allclose(trimmed_mean(updates, 0.2)["w"], torch.tensor([3.0, -3.0]))  # cut 1 each end
    assert torch.allclose(trimmed_mean(updates, 0.1)["w"], torch.tensor([22.0, -22.0]))  # cut 0: the mean
    spec = make(algorithm="trimmed_mean", robust={"trim_fraction": 0.2})
    new, _, _ = aggregate(spec, [0.0], [result(i, [v]) for i, v in enumerate((1.0, 2.0, 3.0, 4.0, 100.0))])
    assert torch.allclose(new["w"], torch.tensor([3.0]))


def test_under_dp_the_mean_is_unweighted_over_clipped_updates() -> None:
    spec = make(algorithm="fedavg", dp={"clip_norm": 1.0, "noise_multiplier": 0.0})
    # [3, 4] has norm 5 and is clipped to [0.6, 0.8]; [0.3, 0] is left alone; 1 vs 9 examples ignored
    results = [
        FitRes(0, 1, 0.5, {"w": torch.tensor([3.0, 4.0])}),
        FitRes(1, 9, 0.5, {"w": torch.tensor([0.3, 0.0])}),
    ]
    delta = strategy_for(spec).aggregate_updates(results)
    assert torch.allclose(delta["w"], torch.tensor([0.45, 0.4]))


@pytest.mark.parametrize("algorithm", ["fedavg", "fedavgm", "fedadam", "krum", "median", "trimmed_mean"])
def test_the_build_picks_the_mean_from_the_spec(algorithm: str) -> None:
    assert strategy_for(make(algorithm=algorithm)).mean is WEIGHTED_MEAN
    if algorithm in ("fedavg", "fedavgm", "fedadam"):
        private = strategy_for(make(algorithm=algorithm, dp={"clip_norm": 2.0, "noise_multiplier": 0.5}))
        assert private.mean == PrivateMean(clip_norm=2.0, noise_multiplier=0.5)


def test_a_strategy_steps_by_the_mean_it_was_built_with() -> None:
    def first_update(results: Sequence[FitRes]) -> Weights:
        return results[0].update

    spec = make(algorithm="fedavgm", server_learning_rate=1.0, server_momentum=0.0)
    strategy = FedAvgM(spec, first_update)
    start = {"w": torch.tensor([1.0])}
    new, _, _ = strategy.aggregate_fit(
        server_round=1, weights=start, results=[result(0, [3.0]), result(1, [5.0])], state=ServerState()
    )
    assert torch.equal(new["w"], torch.tensor([4.0]))


def test_robust_strategies_replace_the_mean_by_their_statistic() -> None:
    def never(results: Sequence[FitRes]) -> Weights:
        raise AssertionError("a robust strategy called the mean")

    results = [result(i, [v]) for i, v in enumerate((1.0, 5.0, 2.0))]
    assert torch.equal(
        Median(make(algorithm="median"), never).aggregate_updates(results)["w"], torch.tensor([2.0])
    )
