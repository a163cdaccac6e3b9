from __future__ import annotations

import pytest
from django.test import Client

from webui import healthz


@pytest.mark.django_db
def test_healthz_is_503_when_no_worker_answers(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(healthz.celery_app.control, "ping", lambda timeout: [])
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["workers"] == {"ok": False, "error": "no Celery worker answered"}
    assert response.json()["database"]["ok"]


@pytest.mark.django_db
def test_healthz_is_503_when_redis_is_down(client: Client, settings) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    body = client.get("/healthz").json()
    assert not body["ok"] and not body["redis"]["ok"] and body["workers"]["error"] == "Redis is down"
