"""The API's JSON renderer: DRF's JSONRenderer with orjson's encoder.

The same JSON for the API's types (datetimes in UTC end in "Z", as DRF writes them; lazy
strings, decimals and the rest through DRF's own encoder), written several times faster: the
job list and rounds endpoints are what every open dashboard and API client polls.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_FALLBACK = JSONEncoder().default
# Like DRF, escape the two line separators JavaScript string literals refuse.
_LINE_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


class FastJSONRenderer(JSONRenderer):
    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        options = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
        if self.get_indent(accepted_media_type or "", renderer_context or {}):
            options |= orjson.OPT_INDENT_2
        rendered = orjson.dumps(data, default=_FALLBACK, option=options)
        for separator, escaped in _LINE_SEPARATORS:
            rendered = rendered.replace(separator, escaped)
        return rendered
