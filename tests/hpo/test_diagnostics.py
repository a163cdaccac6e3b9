"""Diagnostics rules on synthetic curves: each pathology gives its targeted change and reason."""

from __future__ import annotations

from typing import Any

from jobspec import JobSpec
from orchestrator.fl.profiles import client_profile, transfer_seconds
from orchestrator.hpo.diagnostics import DiagnosticsProposer, diagnose, suggestions
from orchestrator.hpo.records import ClientPoint, RoundPoint, TrialRecord


def spec(**overrides: Any) -> JobSpec:
    data: dict[str, Any] = {"dataset": "digits", "model": "mlp", "num_clients": 4, "rounds": 5}
    data.update(overrides)
    return JobSpec.model_validate(data)


def curve(
    accuracies: list[float],
    losses: list[float],
    client_losses: list[list[float]] | None = None,
    *,
    job: JobSpec | None = None,
    compute_s: float = 10.0,
) -> list[RoundPoint]:
    """Rounds whose clients spend `compute_s` simulated seconds computing (transfers come on top)."""
    seed = job.seed if job else 0
    points = []
    for index, (accuracy, loss) in enumerate(zip(accuracies, losses, strict=True)):
        train = client_losses[index] if client_losses else [loss] * 4
        clients = []
        for client_id, train_loss in enumerate(train):
            moving = transfer_seconds(client_profile(seed, client_id), bytes_down=40_000, bytes_up=40_000)
            clients.append(
                ClientPoint(client_id, train_loss, 40_000, 40_000, sim_duration_s=compute_s + moving)
            )
        points.append(RoundPoint(index + 1, accuracy, loss, clients=tuple(clients)))
    return points


def rules(job: JobSpec, rounds: list[RoundPoint]) -> list[str]:
    return [finding.rule for finding in diagnose(job, rounds)]


def test_a_healthy_job_gets_no_finding() -> None:
    job = spec()
    assert rules(job, curve([0.6, 0.8, 0.88, 0.92, 0.94], [1.2, 0.6, 0.4, 0.3, 0.25])) == []
    assert suggestions(job, curve([0.6, 0.8, 0.88, 0.92, 0.94], [1.2, 0.6, 0.4, 0.3, 0.25])) == []


def test_exploding_local_loss_lowers_the_learning_rate() -> None:
    job = spec(optimizer="sgd", learning_rate=3.0)
    rounds = curve([0.1] * 5, [2.34] * 5, [[2.2, 70.0, 3.0, 2.5]] + [[2.3] * 4] * 4)
    assert rules(job, rounds) == ["diverging"]
    first = suggestions(job, rounds)[0]
    assert first.diff(job) == {"learning_rate": (3.0, 0.6)}
    assert "70 in round 1" in first.reason and "explode" in first.reason


def test_an_accuracy_collapse_is_divergence_not_overfitting() -> None:
    job = spec(learning_rate=0.05)
    rounds = curve([0.5, 0.7, 0.75, 0.5, 0.4], [1.4, 0.9, 0.8, 1.3, 1.6])
    assert rules(job, rounds) == ["diverging"]
    assert suggestions(job, rounds)[0].diff(job) == {"learning_rate": (0.05, 0.01)}


def test_a_flat_loss_raises_the_learning_rate_then_local_work() -> None:
    job = spec(learning_rate=0.0005)
    rounds = curve([0.1, 0.19, 0.28, 0.36, 0.4], [2.26, 2.22, 2.18, 2.13, 2.09])
    assert rules(job, rounds) == ["flat"]
    proposals = suggestions(job, rounds)
    assert [p.diff(job) for p in proposals] == [
        {"learning_rate": (0.0005, 0.005)},
        {"local_epochs": (1, 2)},
        {"rounds": (5, 10)},
    ]
    assert "fell only 8% in 5 rounds" in proposals[0].reason


def test_pinned_fields_are_never_suggested() -> None:
    job = spec(learning_rate=0.0005, hpo={"fixed": ["learning_rate", "rounds"]})
    rounds = curve([0.1, 0.19, 0.28, 0.36, 0.4], [2.26, 2.22, 2.18, 2.13, 2.09])
    assert [p.diff(job) for p in suggestions(job, rounds)] == [{"local_epochs": (1, 2)}]


def test_client_drift_under_label_skew_suggests_fedprox() -> None:
    job = spec(partition={"scheme": "dirichlet", "alpha": 0.1}, local_epochs=5)
    rounds = curve(
        [0.5, 0.77, 0.83, 0.85, 0.85], [1.57, 0.96, 0.81, 0.78, 0.75], [[0.2, 0.1, 0.15, 0.25]] * 5
    )
    assert rules(job, rounds) == ["client_drift"]
    proposals = suggestions(job, rounds)
    assert proposals[0].diff(job) == {"algorithm": ("fedavg", "fedprox"), "proximal_mu": (None, 0.1)}
    assert proposals[1].diff(job) == {"local_epochs": (5, 2)}
    assert "client drift" in proposals[0].reason
    # The same gap on IID data is not drift.
    assert rules(spec(local_epochs=5), rounds) == []


def test_rising_loss_with_steady_accuracy_is_overfitting() -> None:
    job = spec(local_epochs=4, rounds=6)
    rounds = curve([0.94, 0.95, 0.96, 0.96, 0.96, 0.96], [0.24, 0.17, 0.18, 0.33, 0.5, 0.77])
    assert rules(job, rounds) == ["overfitting"]
    proposals = suggestions(job, rounds)
    assert [p.diff(job) for p in proposals] == [{"local_epochs": (4, 2)}, {"rounds": (6, 2)}]
    assert "round 2" in proposals[0].reason


def test_slow_links_are_communication_bound() -> None:
    job = spec()
    healthy = ([0.6, 0.8, 0.88, 0.92, 0.94], [1.2, 0.6, 0.4, 0.3, 0.25])
    rounds = curve(*healthy, job=job, compute_s=1e-4)
    assert rules(job, rounds) == ["communication_bound"]
    proposals = suggestions(job, rounds)
    assert proposals[0].diff(job) == {
        "compression.method": ("none", "topk"),
        "compression.ratio": (None, 0.1),
    }
    assert "communication-bound" in proposals[0].reason


def test_at_most_three_distinct_valid_suggestions() -> None:
    job = spec(partition={"scheme": "dirichlet", "alpha": 0.1}, learning_rate=0.0005)
    rounds = curve(
        [0.1, 0.19, 0.28, 0.36, 0.4],
        [2.26, 2.22, 2.18, 2.13, 2.09],
        [[0.2, 0.3, 0.25, 0.2]] * 5,
        job=job,
        compute_s=1e-4,
    )
    assert rules(job, rounds) == ["flat", "client_drift", "communication_bound"]
    proposals = DiagnosticsProposer().propose(job, [TrialRecord(0, job, "complete", rounds=rounds)], 3)
    assert len(proposals) == 3
    assert len({p.spec.model_dump_json() for p in proposals}) == 3
    assert [p.reason.split(":")[-1].strip() for p in proposals] == [
        "learning is too slow",
        "client drift",
        "rounds are communication-bound",
    ]
