"""Fixtures of the web tests: a logged-in browser session, and fresh rate-limit counters."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client


@pytest.fixture
def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def fresh_rate_limits() -> Iterator[None]:
    """Throttling counts live in the cache: start and end each test with none."""
    cache.clear()
    yield
    cache.clear()
