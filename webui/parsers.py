"""The API's JSON parser and error handler: every body is bounded before it is parsed.

`BoundedJSONParser` (REST_FRAMEWORK's default parser, so every API view uses it) refuses,
with the API's field-named error shape `{"errors": [{"field": ..., "message": ...}]}`:

- a body over `FLOTILLA_MAX_BODY_BYTES`: 413, field `body`, read no further than the bound;
- JSON nested deeper than `MAX_JSON_DEPTH`: 400, field `body`, found by a scan of the text
  before any parsing, so no depth reaches the recursive JSON parser;
- JSON that does not parse (or is not UTF-8): 400, field `body`;
- a value no row can hold: a non-finite number (`NaN`, `Infinity`, `1e999`) or a string with
  a NUL character (PostgreSQL's text and jsonb refuse both): 400, naming each such value's
  dotted path (`learning_rate`, `spec.name`, `hpo.fixed.0`).

`BoundedFormParser` holds form bodies to the same size bound and NUL rule (DRF's own reads
the whole stream); multipart bodies keep Django's parser, bounded by DATA_UPLOAD_MAX_MEMORY_SIZE.
`api_exception_handler` also answers Django's own `RequestDataTooBig` (a body read through
`request.body`/`request.POST` over `DATA_UPLOAD_MAX_MEMORY_SIZE`) with the 413 JSON, not the
HTML "Bad Request" page.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import QueryDict
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

MAX_JSON_DEPTH = 64
MAX_VALUE_ERRORS = 20  # field-named errors reported for one body; the rest are left out

# A JSON string literal (escapes included), and anything that is not a bracket.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def body_error(message: str) -> dict[str, list[dict[str, str]]]:
    return {"errors": [{"field": "body", "message": message}]}


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "body_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(body_error(f"the request body is larger than this deployment's {limit} bytes"))


class BodyInvalid(APIException):
    """400 with field-named errors (the body itself, or values inside it)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_body"

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__({"errors": errors})


def max_body_bytes() -> int:
    return int(settings.FLOTILLA_MAX_BODY_BYTES)


def nesting_exceeds(text: str, limit: int) -> bool:
    """Whether JSON text opens more than `limit` arrays/objects inside each other (strings skipped)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def unstorable_values(data: Any, path: tuple[str, ...] = ()) -> Iterator[dict[str, str]]:
    """Field-named errors for the values no database row can hold (call on depth-bounded data)."""
    field = ".".join(path) or "body"
    if isinstance(data, float) and not math.isfinite(data):
        yield {"field": field, "message": "must be a finite number (NaN and infinity are not JSON)"}
    elif isinstance(data, str) and "\x00" in data:
        yield {"field": field, "message": "must not contain a NUL character (\\x00)"}
    elif isinstance(data, Mapping):
        for key, value in data.items():
            if "\x00" in key:
                yield {"field": field, "message": "a key must not contain a NUL character (\\x00)"}
            else:
                yield from unstorable_values(value, (*path, key))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from unstorable_values(item, (*path, str(index)))


def _read_bounded(stream: IO[bytes], request: Any, limit: int) -> bytes:
    meta = getattr(request, "META", {})
    try:
        declared = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise BodyTooLarge(limit)
    try:
        raw = stream.read(limit + 1)
    except RequestDataTooBig as exc:
        raise BodyTooLarge(limit) from exc
    if len(raw) > limit:
        raise BodyTooLarge(limit)
    return raw


class BoundedJSONParser(BaseParser):
    """application/json, bounded in size and depth, holding only values a row can store."""

    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        context = parser_context or {}
        limit = max_body_bytes()
        raw = _read_bounded(stream, context.get("request"), limit)
        encoding = context.get("encoding") or settings.DEFAULT_CHARSET
        try:
            text = raw.decode(encoding)
        except (LookupError, UnicodeDecodeError) as exc:
            raise BodyInvalid([{"field": "body", "message": f"not valid {encoding} text: {exc}"}]) from exc
        if nesting_exceeds(text, MAX_JSON_DEPTH):
            raise BodyInvalid(
                [{"field": "body", "message": f"JSON nested deeper than {MAX_JSON_DEPTH} levels"}]
            )
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, an int of too many digits
            raise BodyInvalid([{"field": "body", "message": f"not valid JSON: {exc}"}]) from exc
        _refuse_unstorable(data)
        return data


def _refuse_unstorable(data: Any) -> None:
    errors = []
    for error in unstorable_values(data):
        errors.append(error)
        if len(errors) == MAX_VALUE_ERRORS:
            break
    if errors:
        raise BodyInvalid(errors)


class BoundedFormParser(BaseParser):
    """application/x-www-form-urlencoded, bounded like the JSON parser (DRF's FormParser otherwise)."""

    media_type = "application/x-www-form-urlencoded"

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> QueryDict:
        context = parser_context or {}
        raw = _read_bounded(stream, context.get("request"), max_body_bytes())
        data = QueryDict(raw, encoding=context.get("encoding") or settings.DEFAULT_CHARSET)
        _refuse_unstorable({key: data.getlist(key) for key in data})
        return data


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus Django's RequestDataTooBig as the API's 413 JSON."""
    # Here, not at the top: rest_framework.views reads DEFAULT_PARSER_CLASSES, this module.
    from rest_framework.views import exception_handler

    if isinstance(exc, RequestDataTooBig):
        exc = BodyTooLarge(int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or max_body_bytes()))
    return exception_handler(exc, context)
