"""The served OpenAPI document (GET /api/schema/) is valid OpenAPI 3.1, each operation once."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from openapi_spec_validator import OpenAPIV31SpecValidator
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
def document(user: User) -> dict[str, Any]:
    client = APIClient()
    client.force_authenticate(user)
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_the_schema_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message[:300]}"
        for error in OpenAPIV31SpecValidator(document).iter_errors()
    ]
    assert errors == []


def test_each_operation_is_listed_once(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert "/api/intents/parse/" in paths and "/api/intents/parse" not in paths
    ids = [
        operation["operationId"]
        for item in paths.values()
        for method, operation in item.items()
        if method in METHODS
    ]
    assert len(ids) == len(set(ids))
