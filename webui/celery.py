"""The Celery app: `celery -A webui worker -Q jobs,clients,hpo`.

Queues: `jobs` (round control: configure, aggregate), `clients` (local training
of simulated clients), `hpo` (hyper-parameter search); every task's name and queue
are in `orchestrator.queues`, the routes below come from there. Configuration comes
from Django settings (the CELERY_* names). Reacting to the worker's start (resuming
jobs and studies) is the orchestrator's, connected when its app is ready.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import celeryd_init, worker_process_init

from orchestrator.queues import TASK_ROUTES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webui.settings")

app = Celery("flotilla")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_routes = TASK_ROUTES
app.autodiscover_tasks()

_worker_processes = 1


@celeryd_init.connect
def remember_pool_size(sender: Any = None, instance: Any = None, **kwargs: Any) -> None:
    """Note how many pool processes share this host's cores (inherited by forked children)."""
    global _worker_processes
    _worker_processes = max(1, int(getattr(instance, "concurrency", 1) or 1))


@worker_process_init.connect
def limit_torch_threads(**kwargs: Any) -> None:
    """Split the cores between pool processes so two trainings on two cores do not thrash."""
    from django.conf import settings

    from orchestrator.fl.config import apply_torch_threads

    apply_torch_threads(settings.FLOTILLA_ENGINE, processes=_worker_processes)
