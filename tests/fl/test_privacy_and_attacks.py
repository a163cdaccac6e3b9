"""Client-level DP (clipping, noise, accounting) and the simulated adversaries."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from opacus.accountants import RDPAccountant
from pydantic import ValidationError

from jobspec import JobSpec
from orchestrator.fl.attacks import (
    label_permutation,
    malicious_clients,
    malicious_count,
    poisoned_labels,
    poisoned_update,
)
from orchestrator.fl.privacy import clip_update, epsilon_spent, private_mean, update_norm


def dp_spec(**kwargs: Any) -> JobSpec:
    return JobSpec.model_validate({"model": "mlp", **kwargs})


def epsilon(spec: JobSpec, rounds: int) -> float:
    spent = epsilon_spent(spec, rounds)
    assert spent is not None
    return spent


def test_clipping_bounds_the_norm_over_all_tensors() -> None:
    update = {"a": torch.tensor([3.0]), "b": torch.tensor([4.0])}  # joint norm 5
    clipped = clip_update(update, 1.0)
    assert update_norm(clipped) == pytest.approx(1.0)
    assert torch.allclose(clipped["a"], torch.tensor([0.6])) and torch.allclose(
        clipped["b"], torch.tensor([0.8])
    )
    assert clip_update(update, 10.0) is update  # short updates pass unchanged


def test_private_mean_noise_has_std_noise_multiplier_times_clip_over_clients() -> None:
    zeros = [{"w": torch.zeros(200_000)} for _ in range(4)]
    generator = torch.Generator().manual_seed(0)
    mean = private_mean(zeros, clip_norm=0.5, noise_multiplier=2.0, generator=generator)
    # noise std on the sum 2.0 * 0.5 = 1.0, divided by 4 clients
    assert float(mean["w"].std()) == pytest.approx(0.25, rel=0.02)
    assert abs(float(mean["w"].mean())) < 0.005


def test_private_mean_draws_fresh_noise_without_a_generator() -> None:
    zeros = [{"w": torch.zeros(100)}]
    first = private_mean(zeros, clip_norm=1.0, noise_multiplier=1.0)
    second = private_mean(zeros, clip_norm=1.0, noise_multiplier=1.0)
    assert not torch.equal(first["w"], second["w"])  # the seed cannot regenerate it


def test_private_mean_clips_on_the_server_too() -> None:
    big = [{"w": torch.tensor([30.0, 40.0])}, {"w": torch.tensor([0.0, 0.0])}]
    mean = private_mean(big, clip_norm=1.0, noise_multiplier=0.0)
    assert torch.allclose(mean["w"], torch.tensor([0.3, 0.4]))


def test_epsilon_comes_from_opacus_rdp_accountant() -> None:
    spec = dp_spec(num_clients=10, clients_per_round=2, dp={"clip_norm": 1.0, "noise_multiplier": 1.1})
    accountant = RDPAccountant()
    for _ in range(5):
        accountant.step(noise_multiplier=1.1, sample_rate=0.2)
    assert epsilon_spent(spec, 5) == pytest.approx(accountant.get_epsilon(delta=1e-5))


def test_epsilon_grows_with_rounds_and_shrinks_with_noise_and_sampling() -> None:
    base = {"num_clients": 10, "clients_per_round": 2, "dp": {"clip_norm": 1.0, "noise_multiplier": 1.0}}
    spec = dp_spec(**base)
    assert epsilon(spec, 1) < epsilon(spec, 10)
    noisier = dp_spec(**{**base, "dp": {"clip_norm": 1.0, "noise_multiplier": 2.0}})
    assert epsilon(noisier, 10) < epsilon(spec, 10)
    chosen = dp_spec(**{**base, "selection": "round_robin"})  # no amplification by sampling claimed
    assert epsilon(chosen, 10) > epsilon(spec, 10)


def test_no_epsilon_without_noise() -> None:
    assert epsilon_spent(dp_spec(), 3) is None
    assert epsilon_spent(dp_spec(dp={"clip_norm": 1.0}), 3) is None  # clipping alone promises nothing


def test_dp_is_refused_for_aggregators_that_are_not_a_mean() -> None:
    with pytest.raises(ValidationError, match="dp"):
        dp_spec(algorithm="median", dp={"clip_norm": 1.0, "noise_multiplier": 1.0})
    with pytest.raises(ValidationError, match="dp"):
        dp_spec(algorithm="scaffold", dp={"clip_norm": 1.0, "noise_multiplier": 1.0})
    assert dp_spec(algorithm="fedadam", dp={"clip_norm": 1.0, "noise_multiplier": 1.0}).dp.enabled


def attack_spec(kind: str, fraction: float = 0.2, **kwargs: Any) -> JobSpec:
    return JobSpec.model_validate(
        {"model": "mlp", "num_clients": 10, "attack": {"kind": kind, "fraction": fraction, **kwargs}}
    )


def attack_scale(kind: str) -> float | None:
    attack = attack_spec(kind).attack
    assert attack is not None
    return attack.scale


def test_the_malicious_set_is_fixed_by_the_seed() -> None:
    spec = attack_spec("sign_flip")
    assert len(malicious_clients(spec)) == 2
    assert malicious_clients(spec) == malicious_clients(attack_spec("scale"))  # same seed, same clients
    others = {
        malicious_clients(JobSpec.model_validate({"num_clients": 10, "seed": s, "attack": {"kind": "scale"}}))
        for s in range(5)
    }
    assert len(others) > 1
    assert malicious_count(0.25, 10) == 3 and malicious_count(0.01, 10) == 1 and malicious_count(1.0, 4) == 4
    assert malicious_clients(JobSpec()) == frozenset()


def test_attack_scales_default_from_the_spec() -> None:
    assert attack_scale("sign_flip") == 4.0
    assert attack_scale("gaussian") == 1.0
    assert attack_scale("scale") == 10.0


@pytest.mark.parametrize(("kind", "factor"), [("sign_flip", -4.0), ("scale", 10.0)])
def test_scaling_attacks_multiply_the_honest_update(kind: str, factor: float) -> None:
    spec = attack_spec(kind)
    attacker = min(malicious_clients(spec))
    honest = next(c for c in range(10) if c not in malicious_clients(spec))
    update = {"w": torch.tensor([1.0, -2.0])}
    generator = torch.Generator().manual_seed(0)
    assert torch.allclose(poisoned_update(spec, attacker, update, generator)["w"], factor * update["w"])
    assert poisoned_update(spec, honest, update, generator) is update


def test_gaussian_attack_replaces_the_update_with_noise() -> None:
    spec = attack_spec("gaussian", scale=2.0)
    attacker = min(malicious_clients(spec))
    update = {"w": torch.full((100_000,), 5.0)}
    noise = poisoned_update(spec, attacker, update, torch.Generator().manual_seed(0))["w"]
    assert float(noise.std()) == pytest.approx(2.0, rel=0.02) and abs(float(noise.mean())) < 0.05


def test_label_flip_permutes_every_class_of_malicious_clients_only() -> None:
    permutation = label_permutation(0, 10)
    assert sorted(permutation.tolist()) == list(range(10))
    assert all(permutation[c] != c for c in range(10))
    spec = attack_spec("label_flip")
    attacker = min(malicious_clients(spec))
    honest = next(c for c in range(10) if c not in malicious_clients(spec))
    labels = torch.arange(10)
    assert torch.equal(poisoned_labels(spec, attacker, labels, 10), permutation)
    assert torch.equal(poisoned_labels(spec, honest, labels, 10), labels)
    update = {"w": torch.ones(2)}
    assert (
        poisoned_update(spec, attacker, update, torch.Generator()) is update
    )  # it trains, then uploads honestly
