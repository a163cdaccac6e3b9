"""The prompt box: a plain-English request becomes the pre-filled new-job form.

`intent_parse` (htmx, or a plain POST without JavaScript) answers with the job form
filled from the parsed spec: the fields the prompt set are highlighted, the parser's
warnings sit beside their fields, and "Run job" submits the spec with the prompt (the
job stores it). `POST /api/intents/parse` returns the same JSON as
`python -m intent_llm parse`. Both refuse prompts over `MAX_PROMPT_CHARS` characters
and are rate-limited per user (`FLOTILLA_INTENT_RATE`, default 30/min).

A data set path in the prompt is looked up only inside the user's data space (their
uploads and the deployment's shared data directory, `dataset_path_resolve`'s rules): the
path is confined by its text before the filesystem is touched, and a path outside gets
exactly the answer a missing file gets, so the parser tells nobody what exists elsewhere.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
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
from intent_llm.loading import PromptParser, load_configured_parser
from intent_llm.parser import MAX_PROMPT_CHARS, TOO_LONG
from orchestrator.fl.config import apply_torch_threads
from orchestrator.limits import UPLOADS_DIRNAME, SpecRejected, data_dir, dataset_path_resolve, user_data_dir
from orchestrator.presets import PRESETS

from .api import JOBSPEC_SCHEMA
from .forms import spec_form
from .views import _form_suggestions, current_user

THROTTLED = "Too many prompts in a short time: wait a minute and try again."
NO_SUCH_FILE = "no such file in your data space: {path} (upload it on the Data page)"

STILL_LOADING = (
    "The prompt reader is still starting (it loads once, in the background, after the server "
    "starts): try again in a few seconds, or fill the form below."
)


class _ParserLoad:
    """The configured parser, loaded once per process in a background thread: the web server
    starts it at start (webui/asgi.py), so a prompt never waits for the load inside its request."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread: threading.Thread | None = None
        self.parser: PromptParser | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        with self.lock:
            if self.thread is None:
                self.thread = threading.Thread(target=self._load, name="intent-parser-load", daemon=True)
                self.thread.start()

    def _load(self) -> None:
        try:
            apply_torch_threads(settings.FLOTILLA_ENGINE)  # the web process's threads: FLOTILLA_TORCH_THREADS
            self.parser = load_configured_parser(settings.FLOTILLA_INTENT_BACKEND)
        except BaseException as exc:  # kept for the requests, which report it
            self.error = exc
        finally:
            self.done.set()


_load = _ParserLoad()


def intent_parser_preload() -> None:
    """Start loading the parser now, in the background (once per process)."""
    _load.start()


def intent_parser(*, wait_s: float | None = None) -> PromptParser | None:
    """The configured parser, or None if it is still loading after `wait_s` seconds (None: as
    long as it takes). A load that failed raises its error here."""
    _load.start()
    _load.done.wait(timeout=wait_s)
    if _load.error is not None:
        raise RuntimeError("the intent parser could not be loaded") from _load.error
    return _load.parser


class IntentRateThrottle(UserRateThrottle):
    """Per user; the rate comes from FLOTILLA_INTENT_RATE, not from REST_FRAMEWORK settings."""

    scope = "intents"
    rate = settings.FLOTILLA_INTENT_RATE


def _confined(raw_path: str, *, owner_id: int) -> Path | None:
    """`raw_path` made absolute and normalised from its text alone, or None when that text
    names a place outside the user's data space (`dataset_path_resolve`'s rules).

    Nothing here touches the filesystem: `..` is collapsed as text, and "~name" (which would
    read the password database) counts as outside; "~/" is the server user's own home.
    """
    text = raw_path
    if text.startswith("~"):
        home, _, rest = text.partition("/")
        if home != "~":
            return None
        text = os.path.join(os.path.expanduser("~"), rest)
    candidate = Path(text)
    if not candidate.is_absolute():
        candidate = user_data_dir(owner_id) / candidate
    normal = Path(os.path.normpath(candidate))
    own = Path(os.path.normpath(user_data_dir(owner_id)))
    # The data directory as configured and as resolved: either spelling of it is inside.
    for root in {data_dir(), Path(os.path.abspath(settings.FLOTILLA_DATA_DIR))}:
        uploads = root / UPLOADS_DIRNAME
        if normal.is_relative_to(root) and not normal.is_relative_to(uploads):
            return normal
        if normal.is_relative_to(uploads / str(owner_id)) or normal.is_relative_to(own):
            return normal
    return None


def data_space_file(raw_path: str, *, owner_id: int) -> str | None:
    """The file a job of this user would read, or None when there is none in their data space.

    A path outside the data space is refused before any file is looked at, and answers the
    same None as a missing file: the caller cannot tell the two apart.
    """
    confined = _confined(raw_path, owner_id=owner_id)
    if confined is None:
        return None
    try:
        return dataset_path_resolve(str(confined), owner_id=owner_id)
    except (SpecRejected, OSError, ValueError):  # ValueError: a NUL byte in the path
        return None


def parse_for_user(prompt: str, user: User) -> ParseResult:
    """Parse with the data set path checked where this user's jobs will read it.

    A path with no file behind it in the user's data space (missing, or anywhere outside
    it) is kept as typed, with the warning NO_SUCH_FILE beside it.
    """
    missing: set[str] = set()

    def resolve(path: str) -> str:
        found = data_space_file(path, owner_id=user.pk)
        if found is None:
            missing.add(path)
            return path  # the spec never reads the file; job_create refuses it on submission
        return found

    if len(prompt) > MAX_PROMPT_CHARS:
        return ParseResult(error=TOO_LONG)
    parser = intent_parser(wait_s=settings.FLOTILLA_INTENT_WAIT_SECONDS)
    if parser is None:
        return ParseResult(error=STILL_LOADING)
    result = parser.parse(prompt, resolve_path=resolve)
    typed = result.spec.get("dataset_path") if result.spec is not None else None
    if isinstance(typed, str) and typed in missing:
        result.warnings.append(("dataset_path", NO_SUCH_FILE.format(path=typed)))
    return result


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
            503: OpenApiResponse(description='{"error": ...}: the parser is still loading (Retry-After)'),
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
        if answer.get("error") == STILL_LOADING:
            return Response(answer, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "5"})
        return Response(
            answer, status=status.HTTP_422_UNPROCESSABLE_ENTITY if "error" in answer else status.HTTP_200_OK
        )
