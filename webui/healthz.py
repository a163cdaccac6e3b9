"""`/healthz`: is this deployment able to run jobs? For operators and load balancers.

Answers 200 when the database, Redis and at least one Celery worker respond,
503 otherwise, with one entry per check. `jobs` lists the stalled jobs (a round that has not
moved for FLOTILLA_STALL_SECONDS, `orchestrator.liveness`); it fails the check (503) only when
a job is stalled because no live worker consumes the queue its round waits for. A stall
without any worker to sweep is failed here past FLOTILLA_STALL_FAIL_SECONDS
(`recovery.jobs_stalled_fail`): load balancers call this page when nothing else runs.
"""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from orchestrator import liveness
from orchestrator.services import recovery

from .celery import app as celery_app

WORKER_PING_TIMEOUT_S = 1.0


def check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "vendor": connection.vendor}


def check_redis() -> dict[str, Any]:
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        client.ping()
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True}


def check_workers() -> dict[str, Any]:
    try:
        replies = celery_app.control.ping(timeout=WORKER_PING_TIMEOUT_S) or []
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    workers = sorted(name for reply in replies for name in reply)
    if not workers:
        return {"ok": False, "error": "no Celery worker answered"}
    return {"ok": True, "workers": workers}


def check_jobs() -> dict[str, Any]:
    try:
        recovery.jobs_stalled_fail()
        stalled = liveness.stalled_jobs()
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    waiting = [stall.job_id for stall in stalled if stall.waiting_for_worker]
    report: dict[str, Any] = {
        "ok": not waiting,
        "stalled": len(stalled),
        "stalled_ids": [stall.job_id for stall in stalled],
        "waiting_for_worker_ids": waiting,
    }
    if waiting:
        report["error"] = f"{len(waiting)} job(s) stalled with no live worker on the queue they wait for"
    return report


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": check_database(), "redis": check_redis()}
    checks["workers"] = check_workers() if checks["redis"]["ok"] else {"ok": False, "error": "Redis is down"}
    if checks["database"]["ok"]:
        checks["jobs"] = check_jobs()
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse({"ok": healthy, **checks}, status=200 if healthy else 503)
