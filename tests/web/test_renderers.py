"""The API's orjson renderer writes what DRF's JSONRenderer writes for the API's types."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer

from webui.renderers import FastJSONRenderer

VALUES = {
    "utc": datetime(2026, 12, 8, 1, 2, 3, 456789, tzinfo=UTC),
    "whole_second": datetime(2026, 12, 8, 1, 2, 3, tzinfo=UTC),
    "offset": datetime(2026, 12, 8, 1, 2, 3, tzinfo=timezone(timedelta(hours=2))),
    "lazy": gettext_lazy("This field is required."),
    "decimal": Decimal("0.25"),
    "text": "naïve\u2028line\u2029end",
    "numbers": [1, 2.5, None, True],
    "nested": {"a": {"b": [{"c": "d"}]}},
}


def test_the_same_json_as_drf() -> None:
    fast, drf = FastJSONRenderer().render(VALUES), JSONRenderer().render(VALUES)
    assert json.loads(fast) == json.loads(drf)
    assert b'"2026-12-08T01:02:03.456789Z"' in fast and b"\\u2028" in fast and b"\\u2029" in fast


def test_nothing_renders_as_empty() -> None:
    assert FastJSONRenderer().render(None) == b""
