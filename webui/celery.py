"""The Celery app: `celery -A webui worker -Q jobs,clients,hpo`.

Queues: `jobs` (round control: configure, aggregate), `clients` (local training
of simulated clients), `hpo` (hyper-parameter search); every task's name and queue
are in `orchestrator.queues`, the routes below come from there. Configuration comes
from Django settings (the CELERY_* names). Reacting to the worker's start (resuming
jobs and studies) is the orchestrator's, connected when its app is ready.

Liveness: every worker's consumer runs `ReclaimStep`, a bootstep on the worker's own timer
that sweeps every FLOTILLA_RECLAIM_SECONDS (`orchestrator.services.recovery.work_reclaim`:
expired leases, lost messages, cancelling and stalled jobs, this worker's heartbeat). A
consumer's steps start again after every broker reconnection, so the step's start re-sends
all unfinished work then (a restarted Redis without persistence lost its queues).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery, bootsteps
from celery.signals import celeryd_init, worker_process_init

from orchestrator.queues import TASK_ROUTES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webui.settings")

app = Celery("flotilla")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_routes = TASK_ROUTES
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


class ReclaimStep(bootsteps.StartStopStep):
    """The worker's periodic sweep, on the consumer's timer (the event loop's, with prefork).

    `start` runs whenever the consumer (re)connects to the broker: it sweeps at once, re-sending
    every unfinished task, then every FLOTILLA_RECLAIM_SECONDS. `stop` (on connection loss and
    at shutdown) cancels the timer entry, so a worker without a broker stops beating and counts
    as not alive. The sweep's queries are short; what it sends, every task claims conditionally.
    """

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.tref: Any = None

    def start(self, c: Any) -> None:
        from django.conf import settings

        self.sweep(c, resend_all=True)
        self.tref = c.timer.call_repeatedly(settings.FLOTILLA_RECLAIM_SECONDS, self.sweep, (c,), priority=10)

    def stop(self, c: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def shutdown(self, c: Any) -> None:
        self.stop(c)

    def sweep(self, c: Any, resend_all: bool = False) -> None:
        from django import db

        from orchestrator.services.recovery import work_reclaim

        queues = sorted(c.app.amqp.queues.consume_from or {})
        try:
            db.close_old_connections()
            counts = work_reclaim(worker=c.hostname or "", queues=queues, resend_all=resend_all)
            if any(counts.values()):
                logger.info("work_reclaim%s: %s", " after (re)connecting" if resend_all else "", counts)
        except Exception:  # the sweep must never take the worker's event loop down
            logger.exception("work_reclaim failed; the next sweep tries again")
        finally:
            # Nothing lingers in the parent that pool children fork from: a connection, or a
            # connection pool whose sockets a child would share (Celery's fork hook closes
            # inherited ones, which would cut the parent's too).
            for connection in db.connections.all(initialized_only=True):
                connection.close()
                if hasattr(connection, "close_pool"):
                    connection.close_pool()


app.steps["consumer"].add(ReclaimStep)

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
    if settings.FLOTILLA_WORKER_WARM_UP:
        warm_up_engine()


def warm_up_engine() -> None:
    """Pay the engine's first-use costs before this pool process takes a task, so a job's first
    round is as quick as its later ones (before any task: the engine seeds torch globally)."""
    from orchestrator.fl.engine import warm_up

    try:
        logger.info("pool process %s: engine warmed up in %.1f s", os.getpid(), warm_up())
    except Exception:  # a warm-up that fails costs the first task its time, nothing else
        logger.exception("pool process %s: warming the engine up failed", os.getpid())
