"""Schemathesis against the live ASGI server: every operation of GET /api/schema/, with inputs
generated from the schema, answers without a server error and as the schema describes.

The server is uvicorn on the session's test database, with a Redis key prefix of its own, so
the tasks it queues reach no worker; whatever the fuzzing creates is parked (finished) after
each call, so that a session's worker sweep never resends it, and the prefix's keys go at the end.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import schemathesis
from django.conf import settings
from django.contrib.auth.models import User
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from orchestrator.models import Job, Round, Study
from orchestrator.services.accounts import api_token_create

from ..processes import free_port, start_server, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EXAMPLES_PER_OPERATION = 25
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_server(clean_services: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    prefix = f"{settings.REDIS_KEY_PREFIX}fuzz:"
    port = free_port()
    log = tmp_path_factory.mktemp("fuzz-server") / "uvicorn.log"
    process = start_server(
        port, log, env={"FLOTILLA_REDIS_PREFIX": prefix, "FLOTILLA_INTENT_RATE": "6000/min"}
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)
        client = redis.Redis.from_url(settings.REDIS_URL)
        for key in client.scan_iter(match=f"{prefix}*", count=500):
            client.delete(key)
        print(f"fuzz server log: {log}")


@pytest.fixture
def auth_headers(make_user: Any) -> dict[str, str]:
    user: User = make_user("fuzzer")
    _, token = api_token_create(user=user)
    return {"Authorization": f"Token {token}"}


def park_created_work() -> None:
    """Finish whatever the fuzzing created, so no worker's sweep ever sends it again."""
    Round.objects.filter(status__in=(Round.Status.PENDING, Round.Status.TRAINING)).update(
        status=Round.Status.CANCELLED
    )
    Job.objects.filter(status__in=Job.ACTIVE_STATUSES).update(status=Job.Status.CANCELLED)
    Study.objects.filter(status__in=Study.ACTIVE_STATUSES).update(status=Study.Status.CANCELLED)


schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_the_api_answers_as_its_schema_says(
    case: Any, fuzz_server: str, auth_headers: dict[str, str]
) -> None:
    try:
        case.call_and_validate(base_url=fuzz_server, headers=dict(auth_headers), timeout=30, checks=CHECKS)
    finally:
        park_created_work()


def test_the_fuzzed_schema_is_the_one_the_server_serves(
    fuzz_server: str, auth_headers: dict[str, str]
) -> None:
    request = urllib.request.Request(f"{fuzz_server}/api/schema/?format=json", headers=auth_headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.load(response) == schema.raw_schema
