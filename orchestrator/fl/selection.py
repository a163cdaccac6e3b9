"""Client selection policies: which clients train in a round.

Each policy is a pure function of the spec, the round, the pool of clients it
may pick from, the selection history the server keeps in its state (JSON under
`ServerState.meta["selection"]`) and a seeded generator. The history holds what
the server knows about every client: its examples, its system profile's expected
compute time and bandwidths (`profiles.py`), and, once it has trained, its last
reported training loss, the round it last trained in and its simulated duration.

With `scheduling.availability` on, the pool is the clients online this round
(a seeded draw against each profile's availability); otherwise every client.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from jobspec import JobSpec

from .profiles import client_profile, is_online

SELECTION_KEY = "selection"
OORT_PENALTY = 2.0  # Oort's exponent alpha on (preferred duration / duration) for slow clients
OORT_STALENESS = 0.1  # Oort's weight of the "not picked for a while" bonus

History = dict[str, Any]
Policy = Callable[[JobSpec, int, list[int], int, History, np.random.Generator], list[int]]


def initial_history(client_facts: list[dict[str, float]], *, bytes_down: float, bytes_up: float) -> History:
    """The history before round 1: per client `examples`, `compute_s`, `down_bps`, `up_bps`,
    and the expected payload sizes (the dense model, until uploads show otherwise)."""
    return {
        "clients": {str(client_id): dict(facts) for client_id, facts in enumerate(client_facts)},
        "bytes_down": float(bytes_down),
        "bytes_up": float(bytes_up),
    }


def record_feedback(history: History, server_round: int, feedback: list[dict[str, Any]]) -> History:
    """Fold one round's client results ({client_id, train_loss, duration_s, bytes_down, bytes_up})
    into a new history."""
    if not feedback:
        return history
    clients = {cid: dict(facts) for cid, facts in history.get("clients", {}).items()}
    for item in feedback:
        facts = clients.setdefault(str(item["client_id"]), {})
        facts["round"] = server_round
        facts["duration_s"] = float(item["duration_s"])
        if math.isfinite(float(item["train_loss"])):
            facts["loss"] = float(item["train_loss"])
    return {
        **history,
        "clients": clients,
        "bytes_down": float(np.mean([item["bytes_down"] for item in feedback])),
        "bytes_up": float(np.mean([item["bytes_up"] for item in feedback])),
    }


def expected_duration(history: History, client_id: int) -> float:
    """Seconds the server expects a client to need this round, from its profile and the
    current payload sizes."""
    facts = history["clients"][str(client_id)]
    return (
        float(facts["compute_s"])
        + 8.0 * float(history["bytes_down"]) / float(facts["down_bps"])
        + 8.0 * float(history["bytes_up"]) / float(facts["up_bps"])
    )


def preferred_duration(spec: JobSpec, history: History) -> float:
    """`scheduling.deadline_s`, or by default the median client's expected round time."""
    if spec.scheduling.deadline_s is not None:
        return spec.scheduling.deadline_s
    return float(np.median([expected_duration(history, c) for c in range(spec.num_clients)]))


def last_loss(history: History, client_id: int) -> float:
    """The client's last reported training loss; +inf if it never reported (so it gets explored)."""
    facts = history.get("clients", {}).get(str(client_id), {})
    return float(facts["loss"]) if "loss" in facts else math.inf


# --- policies ---------------------------------------------------------------------------


def select_random(
    spec: JobSpec, server_round: int, pool: list[int], k: int, history: History, rng: np.random.Generator
) -> list[int]:
    return [int(c) for c in rng.choice(pool, size=k, replace=False)]


def select_round_robin(
    spec: JobSpec, server_round: int, pool: list[int], k: int, history: History, rng: np.random.Generator
) -> list[int]:
    """Walk the client ids in a fixed cycle, k per round, skipping clients outside the pool."""
    start = ((server_round - 1) * spec.sampled_clients()) % spec.num_clients
    available = set(pool)
    order = [(start + step) % spec.num_clients for step in range(spec.num_clients)]
    return [c for c in order if c in available][:k]


def select_power_of_choice(
    spec: JobSpec, server_round: int, pool: list[int], k: int, history: History, rng: np.random.Generator
) -> list[int]:
    """Power-of-choice (Cho et al. 2022): draw d candidates in proportion to their data, keep the k
    with the highest local loss. The loss is the client's last reported training loss (clients that
    never trained count as +inf), because asking every candidate to evaluate would cost a round trip."""
    d = spec.scheduling.poc_candidates or 2 * spec.sampled_clients()
    d = max(k, min(d, len(pool)))
    examples = np.array([float(history["clients"][str(c)]["examples"]) for c in pool])
    candidates = [int(c) for c in rng.choice(pool, size=d, replace=False, p=examples / examples.sum())]
    return sorted(candidates, key=lambda c: -last_loss(history, c))[:k]


def select_deadline(
    spec: JobSpec, server_round: int, pool: list[int], k: int, history: History, rng: np.random.Generator
) -> list[int]:
    """Pick at random among the clients expected to finish before the deadline; when none is,
    the fastest one."""
    deadline = preferred_duration(spec, history)
    expected = {c: expected_duration(history, c) for c in pool}
    eligible = [c for c in pool if expected[c] <= deadline]
    if not eligible:
        return [min(pool, key=lambda c: expected[c])]
    return [int(c) for c in rng.choice(eligible, size=min(k, len(eligible)), replace=False)]


def oort_scores(spec: JobSpec, server_round: int, clients: list[int], history: History) -> dict[int, float]:
    """Oort's utility (Lai et al. 2021) of clients that have trained: statistical utility
    (examples x last training loss, which stands in for the root mean square loss), normalised
    to [0, 1], plus a bonus for clients not picked for a while, times (T / t)^alpha when the
    client's last duration t exceeds the preferred round duration T."""
    preferred = preferred_duration(spec, history)
    raw = {c: float(history["clients"][str(c)]["examples"]) * last_loss(history, c) for c in clients}
    low, high = min(raw.values()), max(raw.values())
    scores = {}
    for c in clients:
        facts = history["clients"][str(c)]
        utility = (raw[c] - low) / (high - low) if high > low else 1.0
        utility += math.sqrt(OORT_STALENESS * math.log(server_round) / max(int(facts["round"]), 1))
        duration = float(facts.get("duration_s", expected_duration(history, c)))
        if duration > preferred:
            utility *= (preferred / duration) ** OORT_PENALTY
        scores[c] = utility
    return scores


def select_oort(
    spec: JobSpec, server_round: int, pool: list[int], k: int, history: History, rng: np.random.Generator
) -> list[int]:
    """Oort: exploit the highest-utility clients that have trained; explore untried ones (each
    pick with probability `scheduling.oort_exploration`, or as many as needed to fill the round),
    faster ones first in proportion to their expected speed."""
    tried = [c for c in pool if last_loss(history, c) < math.inf]
    untried = [c for c in pool if last_loss(history, c) == math.inf]
    explore = int(rng.binomial(k, spec.scheduling.oort_exploration))
    explore = min(len(untried), max(explore, k - len(tried)))
    picked: list[int] = []
    if explore:
        speed = np.array([1.0 / expected_duration(history, c) for c in untried])
        picked = [int(c) for c in rng.choice(untried, size=explore, replace=False, p=speed / speed.sum())]
    if k > explore:
        scores = oort_scores(spec, server_round, tried, history)
        picked += sorted(tried, key=lambda c: -scores[c])[: k - explore]
    return picked


POLICIES: dict[str, Policy] = {
    "random": select_random,
    "round_robin": select_round_robin,
    "oort": select_oort,
    "power_of_choice": select_power_of_choice,
    "deadline": select_deadline,
}


def selection_pool(spec: JobSpec, server_round: int) -> list[int]:
    """The clients a policy may pick this round: those online, when availability is simulated."""
    everyone = list(range(spec.num_clients))
    if not spec.scheduling.availability:
        return everyone
    online = [c for c in everyone if is_online(spec.seed, server_round, c)]
    # Nobody online would stall the job: the most available client is the one that would show up.
    return online or [max(everyone, key=lambda c: client_profile(spec.seed, c).availability)]


def select_clients(spec: JobSpec, server_round: int, meta: dict[str, Any]) -> list[int]:
    policy = POLICIES.get(spec.selection)
    if policy is None:
        raise ValueError(f"selection '{spec.selection}' is not available in this installation")
    rng = np.random.default_rng([spec.seed, server_round, 1])
    pool = selection_pool(spec, server_round)
    k = min(spec.sampled_clients(), len(pool))
    return sorted(policy(spec, server_round, pool, k, meta.get(SELECTION_KEY, {}), rng))
