"""The prompt box: a plain-English request becomes the pre-filled new-job form.

`intent_parse` (htmx, or a plain POST without JavaScript) answers with the job form
filled from the parsed spec: the fields the prompt set are highlighted, the parser's
warnings sit beside their fields, and "Run job" submits the spec with the prompt (the
job stores it). `POST /api/intents/parse` returns the same JSON as
`python -m intent_llm parse`. Both refuse prompts over `MAX_PROMPT_CHARS` characters
and are rate-limited per user (`FLOTILLA_INTENT_RATE`, default 30/min).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from intent_llm.decode import ParseResult
from intent_llm.loading import BackendSettings, PromptParser, load_configured_parser
from intent_llm.parser import MAX_PROMPT_CHARS, TOO_LONG
from orchestrator.fl.config import apply_torch_threads
from orchestrator.limits import SpecRejected, dataset_path_resolve
from orchestrator.presets import PRESETS

from .api import JOBSPEC_SCHEMA
from .forms import spec_form
from .views import _form_suggestions, current_user

INTENT_RATE = os.environ.get("FLOTILLA_INTENT_RATE", "30/min")
THROTTLED = "Too many prompts in a short time: wait a minute and try again."

_parser: PromptParser | None = None
_parser_lock = threading.Lock()


def intent_parser() -> PromptParser:
    """The configured parser, loaded once per process on first use."""
    global _parser
    with _parser_lock:
        if _parser is None:
            apply_torch_threads(settings.FLOTILLA_ENGINE)  # the web process's threads: FLOTILLA_TORCH_THREADS
            _parser = load_configured_parser(BackendSettings.from_environment(os.environ))
        return _parser


class IntentRateThrottle(UserRateThrottle):
    """Per user; the rate comes from FLOTILLA_INTENT_RATE, not from REST_FRAMEWORK settings."""

    scope = "intents"
    rate = INTENT_RATE


def parse_for_user(prompt: str, user: User) -> ParseResult:
    """Parse with the data set path checked where this user's jobs will read it."""

    def resolve(path: str) -> str:
        try:
            return dataset_path_resolve(path, owner_id=user.pk)
        except SpecRejected:
            return path  # job_create names the problem when the job is submitted

    if len(prompt) > MAX_PROMPT_CHARS:
        return ParseResult(error=TOO_LONG)
    return intent_parser().parse(prompt, resolve_path=resolve)


def _warnings_by_field(result: ParseResult) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, message in result.warnings:
        joined[name] = f"{joined[name]}; {message}" if name in joined else message
    return joined


@login_required
@require_POST
def intent_parse(request: HttpRequest) -> HttpResponse:
    prompt = request.POST.get("prompt", "")
    htmx = request.headers.get("HX-Request") == "true"
    if not IntentRateThrottle().allow_request(request, None):  # type: ignore[arg-type]
        result = ParseResult(error=THROTTLED)
        code = 429
    else:
        result = parse_for_user(prompt, current_user(request))
        code = 200
    context: dict[str, Any] = {"intent_prompt": prompt, "intent_result": result}
    if result.spec is None:
        if htmx:
            # 200 even when throttled: htmx swaps only successful answers into the page.
            response = render(request, "intent/_message.html", context)
            response["HX-Retarget"] = "#prompt-result"
            response["HX-Reswap"] = "innerHTML"
            return response
        form = spec_form(suggestions=_form_suggestions(request))
        return render(
            request,
            "jobs/new.html",
            {**context, "form": form, "presets": PRESETS},
            status=400 if code == 200 else code,
        )
    warnings = _warnings_by_field(result)
    form = spec_form(
        result.spec,
        highlighted=result.mentioned,
        explicit=result.mentioned,
        warnings=warnings,
        suggestions=_form_suggestions(request),
        prompt=prompt,
    )
    context["form"] = form  # every warning is also listed in the summary above the form
    if htmx:
        return render(request, "intent/_parsed_form.html", context)
    return render(request, "jobs/new.html", {**context, "presets": PRESETS})


PARSE_REQUEST_SCHEMA = {
    "type": "object",
    "properties": {"prompt": {"type": "string", "maxLength": MAX_PROMPT_CHARS}},
    "required": ["prompt"],
}
PARSE_RESPONSE_SCHEMA = {
    "allOf": [JOBSPEC_SCHEMA],
    "properties": {
        "mentioned": {"type": "array", "items": {"type": "string"}},
        "warnings": {"type": "array", "items": {"type": "string"}},
    },
}


class IntentParse(APIView):
    """Turn a plain-English prompt into a job spec: the JSON of `python -m intent_llm parse`."""

    throttle_classes = [IntentRateThrottle]

    @extend_schema(
        request={"application/json": PARSE_REQUEST_SCHEMA},
        responses={
            200: OpenApiResponse(
                PARSE_RESPONSE_SCHEMA, description="The resolved spec, plus mentioned and warnings."
            ),
            400: OpenApiResponse(description='{"error": ...}: no prompt string in the body'),
            413: OpenApiResponse(
                description=f'{{"error": ...}}: the prompt is over {MAX_PROMPT_CHARS} characters'
            ),
            422: OpenApiResponse(description='{"error": ...}: the prompt is not a federated training job'),
            429: OpenApiResponse(description="rate limited"),
        },
    )
    def post(self, request: Request) -> Response:
        prompt = request.data.get("prompt") if isinstance(request.data, dict) else None
        if not isinstance(prompt, str):
            return Response({"error": 'send {"prompt": "..."}'}, status=status.HTTP_400_BAD_REQUEST)
        if len(prompt) > MAX_PROMPT_CHARS:
            return Response({"error": TOO_LONG}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        user = request.user
        assert isinstance(user, User)
        answer = parse_for_user(prompt, user).to_json()
        return Response(
            answer, status=status.HTTP_422_UNPROCESSABLE_ENTITY if "error" in answer else status.HTTP_200_OK
        )
