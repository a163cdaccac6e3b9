"""The truth about jobs: what was asked, what ran, what every round measured.

WebSocket events and Celery messages are notifications; these rows are what a
page, the API or a resumed worker reads.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class Job(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        CANCELLING = "cancelling"
        CANCELLED = "cancelled"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING, Status.CANCELLING)
    FINISHED_STATUSES = (Status.CANCELLED, Status.SUCCEEDED, Status.FAILED)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs")
    name = models.CharField(max_length=200, blank=True)
    spec = models.JSONField(help_text="The resolved JobSpec the job runs with.")
    prompt = models.TextField(blank=True, help_text="The plain-English request the spec came from, if any.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    error = models.TextField(blank=True, help_text="Why the job failed, in words a user can act on.")
    rounds_total = models.PositiveIntegerField()
    current_round = models.PositiveIntegerField(default=0, help_text="The last completed round.")
    final_accuracy = models.FloatField(null=True, blank=True)
    final_loss = models.FloatField(null=True, blank=True)
    best_accuracy = models.FloatField(null=True, blank=True)
    best_round = models.PositiveIntegerField(null=True, blank=True)
    bytes_up_total = models.BigIntegerField(default=0)
    bytes_down_total = models.BigIntegerField(default=0)
    client_cpu_s_total = models.FloatField(default=0.0)
    wall_s_total = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "status"])]

    def __str__(self) -> str:
        return f"job {self.pk} ({self.display_name})"

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        spec: dict[str, Any] = self.spec or {}
        return f"{spec.get('dataset')} · {spec.get('model')} · {spec.get('algorithm')}"

    @property
    def storage_key(self) -> str:
        """This job's directory name in artifact storage. The creation time makes it unique even
        when job ids repeat (a database reset while the artifact directory stays)."""
        return f"{self.pk}-{self.created_at:%Y%m%dT%H%M%S%f}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED_STATUSES

    @property
    def progress_percent(self) -> int:
        return round(100 * self.current_round / self.rounds_total) if self.rounds_total else 0


class Round(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"  # created, waiting for the round task to claim it
        TRAINING = "training"  # clients fanned out
        AGGREGATING = "aggregating"  # every client reported; the finish task runs
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="rounds")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    accuracy = models.FloatField(null=True, blank=True)
    loss = models.FloatField(null=True, blank=True)
    bytes_up = models.BigIntegerField(default=0)
    bytes_down = models.BigIntegerField(default=0)
    client_cpu_s = models.FloatField(default=0.0)
    wall_s = models.FloatField(default=0.0)
    selected = models.JSONField(default=list, help_text="Client ids selected this round.")
    failures = models.JSONField(default=list, help_text='[{"client_id": 3, "error": "..."}]')
    metrics = models.JSONField(default=dict, help_text="RoundSummary.metrics from the engine.")
    expected_clients = models.PositiveIntegerField(default=0)
    finished_clients = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    resent_at = models.DateTimeField(
        null=True, blank=True, help_text="When a worker's sweep last re-sent this round's waiting tasks."
    )

    class Meta:
        ordering = ["job", "number"]
        constraints = [models.UniqueConstraint(fields=["job", "number"], name="round_unique_per_job")]

    def __str__(self) -> str:
        return f"job {self.job_id} round {self.number}"


class ClientUpdate(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="client_updates")
    client_id = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    config = models.JSONField(default=dict, help_text="The fit instructions (FitIns.config) sent down.")
    num_examples = models.PositiveIntegerField(default=0)
    train_loss = models.FloatField(null=True, blank=True)
    bytes_up = models.BigIntegerField(default=0)
    bytes_down = models.BigIntegerField(default=0)
    cpu_s = models.FloatField(default=0.0)
    wall_s = models.FloatField(default=0.0)
    metrics = models.JSONField(default=dict)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="The Celery worker that claimed it.")
    attempts = models.PositiveIntegerField(default=0, help_text="How many times a worker claimed it.")
    lease_expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="While running: the claim holds until then unless its worker's heartbeat extends it; "
        "any live worker may reclaim an expired one (services.recovery.work_reclaim).",
    )
    progress = models.FloatField(
        default=0.0,
        help_text="While running: the share of its training steps done (its heartbeat writes it).",
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["round", "client_id"]
        constraints = [
            models.UniqueConstraint(fields=["round", "client_id"], name="client_update_unique_per_round")
        ]

    def __str__(self) -> str:
        return f"{self.round} client {self.client_id}"


class WorkerHeartbeat(models.Model):
    """A Celery worker's last sign of life, written by its periodic sweep (`webui.celery.ReclaimStep`).

    "No live worker" on a job page or /healthz means no row of a worker consuming the needed
    queue is recent; a worker that lost its broker stops beating (its sweep stops with it).
    """

    hostname = models.CharField(max_length=200, unique=True)
    queues = models.JSONField(default=list, help_text="The queues it consumes.")
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return f"worker {self.hostname} seen {self.seen_at:%H:%M:%S}"


class MetricPoint(models.Model):
    """One numeric metric of one round (long format: one row per name per round)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="metric_points")
    round = models.PositiveIntegerField()
    name = models.CharField(max_length=100)
    value = models.FloatField()

    class Meta:
        ordering = ["job", "round", "name"]
        constraints = [models.UniqueConstraint(fields=["job", "round", "name"], name="metric_point_unique")]

    def __str__(self) -> str:
        return f"job {self.job_id} round {self.round} {self.name}={self.value}"


# --- hyper-parameter search (orchestrator/hpo) --------------------------------------------------


class Study(models.Model):
    """The search an HPO job (`hpo.enabled`) runs: trials are child jobs, the best spec runs once more.

    Optuna keeps its own record of the study (RDB storage in this database, named
    `optuna_name`); these rows are what pages and the API read.
    """

    class Status(models.TextChoices):
        RUNNING = "running"  # trials queued or running
        EVALUATING = "evaluating"  # the best spec runs as a plain job for its test figure
        SUCCEEDED = "succeeded"
        CANCELLED = "cancelled"
        FAILED = "failed"

    ACTIVE_STATUSES = (Status.RUNNING, Status.EVALUATING)

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="study")
    optuna_name = models.CharField(max_length=100, unique=True)
    trials_total = models.PositiveIntegerField()
    parallel_trials = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING, db_index=True)
    best_trial = models.ForeignKey(
        "Trial", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    final_job = models.OneToOneField(
        Job,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="study_final",
        help_text="The best spec run as a plain job: its test accuracy is the study's result.",
    )
    lease_until = models.DateTimeField(
        null=True, blank=True, help_text="Held by the study task working on it (one at a time)."
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"study {self.pk} of {self.job}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class Trial(models.Model):
    """One trial of a study: an ordinary job on a validation split, compared on it."""

    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETE = "complete"
        PRUNED = "pruned"
        FAILED = "failed"
        CANCELLED = "cancelled"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="trials")
    number = models.PositiveIntegerField()
    optuna_number = models.PositiveIntegerField()
    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="hpo_trial")
    source = models.CharField(max_length=32, help_text="Who proposed the spec: base, optuna, llm.")
    reason = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    value = models.FloatField(null=True, blank=True, help_text="The validation objective, last reported.")
    reported_round = models.PositiveIntegerField(default=0, help_text="Rounds reported to the pruner.")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["study", "number"]
        constraints = [
            models.UniqueConstraint(fields=["study", "number"], name="trial_unique_number"),
            models.UniqueConstraint(fields=["study", "optuna_number"], name="trial_unique_optuna_number"),
        ]

    def __str__(self) -> str:
        return f"{self.study} trial {self.number}"


class JobSuggestions(models.Model):
    """The changed specs proposed for a finished job (at most three), computed once when it ends."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="hpo_suggestions")
    items = models.JSONField(
        default=list, help_text='[{"spec": {...}, "reason": "...", "source": "diagnostics" or "llm"}]'
    )
    warnings = models.JSONField(default=list, help_text="What a language model answered that was discarded.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "job suggestions"

    def __str__(self) -> str:
        return f"{len(self.items)} suggestion(s) for {self.job}"
