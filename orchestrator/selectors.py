"""Reads: what pages, the API, downloads and the WebSocket consumer show."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.utils import timezone

from .fl.records import CORE_FIGURES
from .liveness import active_round
from .models import ClientUpdate, Job, MetricPoint, Round

# Labels for metrics the engine may add to RoundSummary.metrics; others show by name.
METRIC_LABELS = {
    "accuracy": "Test accuracy",
    "loss": "Test loss",
    "bytes_up": "Bytes uploaded",
    "bytes_down": "Bytes downloaded",
    "client_cpu_s": "Client CPU (s)",
    "wall_s": "Wall time (s)",
    "sim_latency_s": "Simulated latency (s)",
    "compression_ratio": "Compression ratio",
    "epsilon": "Privacy spent (ε)",
}


def metric_label(name: str) -> str:
    return METRIC_LABELS.get(name) or name.replace("_", " ").capitalize()


def jobs_for_user(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Job]:
    """The user's own jobs, newest first (nobody sees another user's jobs)."""
    if not user.is_authenticated:
        return Job.objects.none()
    return Job.objects.filter(owner_id=user.pk)


def job_for_user(*, user: AbstractBaseUser | AnonymousUser, job_id: int) -> Job | None:
    return jobs_for_user(user=user).filter(pk=job_id).first()


def job_for_job_id(*, job_id: int) -> Job | None:
    """A job by id, for code that has already checked the owner (the WebSocket consumer)."""
    return Job.objects.filter(pk=job_id).first()


def completed_rounds(*, job: Job) -> QuerySet[Round]:
    return job.rounds.filter(status=Round.Status.COMPLETED).order_by("number")


def completed_rounds_rows(
    *, job: Job, fields: Sequence[str], client_fields: Sequence[str]
) -> list[dict[str, Any]]:
    """The job's completed rounds, oldest first, as plain rows: each Round's `fields` and, under
    "clients", its ClientUpdates' `client_fields` by client id. Two queries and no model
    instances, since every open dashboard and API client polls this."""
    rounds = list(completed_rounds(job=job).values("pk", *fields))
    clients: dict[int, list[dict[str, Any]]] = {row["pk"]: [] for row in rounds}
    updates = ClientUpdate.objects.filter(round_id__in=list(clients)).order_by("round_id", "client_id")
    for update in updates.values("round_id", *client_fields):
        clients[update.pop("round_id")].append(update)
    for row in rounds:
        row["clients"] = clients[row.pop("pk")]
    return rounds


@dataclass(frozen=True)
class RoundProgress:
    """The running round as the job page shows it: which clients reported, of how many, how far
    the training ones are, and the job's elapsed time with an estimate of what is left (from
    the work done so far, training clients counted by their steps done)."""

    number: int
    finished: int
    expected: int
    percent: int  # of the whole job, the running round counted by its clients
    elapsed_s: float
    eta_s: float | None
    clients: list[dict[str, Any]] = field(default_factory=list)  # the latest reported, by client id
    training: list[tuple[int, int]] = field(default_factory=list)  # (client id, percent of its steps done)


REPORTED_FIELDS = ("client_id", "status", "train_loss", "wall_s", "bytes_up", "error")
# A page re-renders this on every client's report: a round of 1,000 clients shows its latest few.
REPORTED_SHOWN = 12


def round_progress(*, job: Job, now: datetime | None = None) -> RoundProgress | None:
    """The running round's progress; None when no round's clients are out yet."""
    round_ = active_round(job) if job.is_active else None
    if round_ is None or not round_.expected_clients:
        return None
    training = list(
        round_.client_updates.filter(status=ClientUpdate.Status.RUNNING)
        .order_by("client_id")
        .values_list("client_id", "progress")
    )
    done = (round_.finished_clients + sum(share for _, share in training)) / round_.expected_clients
    fraction = (job.current_round + done) / job.rounds_total if job.rounds_total else 0.0
    elapsed = ((now or timezone.now()) - job.started_at).total_seconds() if job.started_at else 0.0
    latest = round_.client_updates.filter(finished_at__isnull=False).order_by("-finished_at", "-pk")
    reported = sorted(latest.values(*REPORTED_FIELDS)[:REPORTED_SHOWN], key=lambda row: row["client_id"])
    return RoundProgress(
        number=round_.number,
        finished=round_.finished_clients,
        expected=round_.expected_clients,
        percent=round(100 * fraction),
        elapsed_s=elapsed,
        eta_s=elapsed * (1 - fraction) / fraction if fraction > 0 else None,
        clients=reported,
        training=[(client_id, round(100 * share)) for client_id, share in training],
    )


def numeric_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        name: float(value)
        for name, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(float(value))
    }


@dataclass(frozen=True)
class RoundView:
    """One completed round as a page row and a chart point."""

    round: Round

    @property
    def number(self) -> int:
        return self.round.number

    @property
    def extra_metrics(self) -> dict[str, float]:
        return {k: v for k, v in numeric_metrics(self.round.metrics).items() if k not in CORE_FIGURES}

    @property
    def failed_ids(self) -> list[int]:
        return [int(f["client_id"]) for f in self.round.failures]

    @property
    def point(self) -> dict[str, Any]:
        r = self.round
        return {
            "round": r.number,
            **{name: getattr(r, name) for name in CORE_FIGURES},
            "selected": r.selected,
            "failed": self.failed_ids,
            "extra": self.extra_metrics,
        }

    @property
    def point_json(self) -> str:
        return json.dumps(self.point)


def round_views(*, job: Job, numbers: list[int] | None = None) -> list[RoundView]:
    rounds = completed_rounds(job=job)
    if numbers is not None:
        rounds = rounds.filter(number__in=numbers)
    return [RoundView(r) for r in rounds]


def extra_metric_names(views: list[RoundView]) -> list[str]:
    names: list[str] = []
    for view in views:
        names.extend(name for name in view.extra_metrics if name not in names)
    return names


def metric_table(*, job: Job) -> tuple[list[str], list[dict[str, float | int]]]:
    """Per-round metrics in wide form (one row per round), from the MetricPoint series."""
    rows: dict[int, dict[str, float | int]] = {}
    names: list[str] = list(CORE_FIGURES)
    for point in MetricPoint.objects.filter(job=job).order_by("round", "id"):
        value = int(point.value) if point.value.is_integer() else point.value
        rows.setdefault(point.round, {"round": point.round})[point.name] = value
        if point.name not in names:
            names.append(point.name)
    return ["round", *names], [rows[number] for number in sorted(rows)]


def metrics_csv(*, job: Job) -> str:
    columns, rows = metric_table(job=job)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def metrics_document(*, job: Job) -> dict[str, Any]:
    """The JSON download: the job, its spec and every round with its clients."""
    rounds = []
    for r in completed_rounds(job=job).prefetch_related("client_updates"):
        rounds.append(
            {
                "round": r.number,
                **{name: getattr(r, name) for name in CORE_FIGURES},
                "metrics": r.metrics,
                "selected": r.selected,
                "failures": r.failures,
                "clients": [
                    {
                        "client_id": u.client_id,
                        "status": u.status,
                        "num_examples": u.num_examples,
                        "train_loss": u.train_loss,
                        "bytes_up": u.bytes_up,
                        "bytes_down": u.bytes_down,
                        "cpu_s": u.cpu_s,
                        "wall_s": u.wall_s,
                        "metrics": u.metrics,
                        "error": u.error,
                    }
                    for u in r.client_updates.all()
                ],
            }
        )
    return {
        "job": job.pk,
        "name": job.display_name,
        "status": job.status,
        "spec": job.spec,
        "final_accuracy": job.final_accuracy,
        "final_loss": job.final_loss,
        "rounds": rounds,
    }
