"""Every bad input gets a clear 4xx JSON error naming the field (or the body); nothing is queued.

Issue #20, points 3 and 4: bodies too large or too deep, non-finite numbers, NUL characters,
seeds outside numpy's range, and jobs over the deployment's admission limits (local epochs,
HPO trials, the per-job work budget). Each case posts to the API as an authenticated user
and checks the status, that the JSON errors name the field, that no job row was written and
that no task was sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from rest_framework.test import APIClient

from jobspec import JobSpec
from orchestrator.hpo.services import _common as hpo_common
from orchestrator.limits import admission_errors, dataset_examples, job_work
from orchestrator.models import Job, Study
from orchestrator.presets import PRESETS
from orchestrator.services import _common as services_common
from webui.parsers import MAX_JSON_DEPTH, nesting_exceeds

pytestmark = pytest.mark.django_db

JOBS = "/api/jobs/"
INTENTS = "/api/intents/parse"
MB = 1024 * 1024


@pytest.fixture
def api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    """Every task the job and HPO services would send."""
    tasks: list[tuple[str, tuple[Any, ...]]] = []
    monkeypatch.setattr(services_common, "send_task", lambda name, *args: tasks.append((name, args)))
    monkeypatch.setattr(
        hpo_common, "send_task", lambda name, *args, countdown=None: tasks.append((name, args))
    )
    return tasks


@pytest.fixture
def committed(django_capture_on_commit_callbacks) -> Callable[..., Any]:
    """Call a request and run what it left for after its commit, as a real request would."""

    def call(request: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return request(*args, **kwargs)

    return call


def post_raw(api: APIClient, path: str, body: str, content_type: str = "application/json") -> Any:
    return api.generic("POST", path, body, content_type=content_type)


def error_fields(response: Any) -> list[str]:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    return [str(error["field"]) for error in response.json()["errors"]]


def assert_refused(response: Any, status: int, field: str, sent: list) -> None:
    assert response.status_code == status, response.content[:500]
    fields = error_fields(response)
    assert any(name == field or name.endswith("." + field) for name in fields), fields
    assert not Job.objects.exists() and not Study.objects.exists()
    assert sent == []


NESTED_ARRAYS = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 5_000 + "1" + "}" * 5_000

# (raw JSON body, status, the field its error names)
RAW_BODIES = [
    pytest.param(NESTED_ARRAYS, 400, "body", id="100000-nested-arrays"),
    pytest.param(DEEP_OBJECT, 400, "body", id="5000-deep-object"),
    pytest.param('{"spec": ' + NESTED_ARRAYS + "}", 400, "body", id="nested-arrays-as-spec"),
    pytest.param('{"rounds": 2', 400, "body", id="truncated-json"),
    pytest.param('{"seed": ' + "9" * 5_000 + "}", 400, "body", id="int-of-5000-digits"),
    pytest.param('{"learning_rate": 1e999}', 400, "learning_rate", id="learning_rate-1e999"),
    pytest.param('{"server_learning_rate": 1e999}', 400, "server_learning_rate", id="server_lr-1e999"),
    pytest.param('{"learning_rate": NaN}', 400, "learning_rate", id="learning_rate-NaN"),
    pytest.param('{"learning_rate": -Infinity}', 400, "learning_rate", id="learning_rate-minus-Infinity"),
    pytest.param('{"dp": {"clip_norm": Infinity}}', 400, "dp.clip_norm", id="dp.clip_norm-Infinity"),
    pytest.param('{"spec": {"learning_rate": 1e999}}', 400, "learning_rate", id="wrapped-learning_rate"),
]


@pytest.mark.parametrize(("body", "status", "field"), RAW_BODIES)
def test_raw_json_bodies_are_refused_by_name(
    api, sent, committed, body: str, status: int, field: str
) -> None:
    assert_refused(committed(post_raw, api, JOBS, body), status, field, sent)


# (spec or {"spec", "prompt"} body, the field its error names)
BAD_SPECS = [
    pytest.param({"learning_rate": "inf"}, "learning_rate", id="learning_rate-'inf'"),
    pytest.param({"server_learning_rate": "inf"}, "server_learning_rate", id="server_lr-'inf'"),
    pytest.param({"learning_rate": "-Infinity"}, "learning_rate", id="learning_rate-'-Infinity'"),
    pytest.param({"name": "a\x00b"}, "name", id="name-NUL"),
    pytest.param({"dataset": "csv", "dataset_path": "x\x00.csv"}, "dataset_path", id="dataset_path-NUL"),
    pytest.param({"hpo": {"fixed": ["rounds\x00"]}}, "hpo.fixed.0", id="hpo.fixed-NUL"),
    pytest.param({"spec": {"rounds": 2}, "prompt": "two\x00rounds"}, "prompt", id="prompt-NUL"),
    pytest.param({"spec": {"name": "a\x00"}}, "name", id="wrapped-name-NUL"),
    pytest.param({"seed": -1}, "seed", id="seed-minus-1"),
    pytest.param({"seed": 2**32}, "seed", id="seed-2**32"),
    pytest.param({"seed": 2**64}, "seed", id="seed-2**64"),
    pytest.param({"seed": 10**30}, "seed", id="seed-10**30"),
    pytest.param({"local_epochs": 10**6}, "local_epochs", id="local_epochs-10**6"),
    pytest.param({"local_epochs": 101}, "local_epochs", id="local_epochs-over-limit"),
    pytest.param({"hpo": {"enabled": True, "trials": 10**6}}, "hpo.trials", id="hpo.trials-10**6"),
    pytest.param({"hpo": {"enabled": True, "trials": 201}}, "hpo.trials", id="hpo.trials-over-limit"),
    pytest.param({"dataset": "mnist", "rounds": 500, "local_epochs": 100}, "rounds", id="work-mnist-500x100"),
    pytest.param(
        {"dataset": "ag_news", "rounds": 300, "local_epochs": 20}, "rounds", id="work-ag_news-300x20"
    ),
    pytest.param(
        {"dataset": "cifar10", "rounds": 250, "local_epochs": 30, "hpo": {"enabled": True, "trials": 10}},
        "hpo.fixed",
        id="work-largest-hpo-trial",
    ),
    pytest.param(
        {"rounds": 300, "hpo": {"enabled": True, "trials": 4}}, "hpo.fixed", id="hpo-trial-rounds-over-limit"
    ),
]


@pytest.mark.parametrize(("body", "field"), BAD_SPECS)
def test_bad_specs_are_refused_by_name(api, sent, committed, body: dict, field: str) -> None:
    assert_refused(committed(api.post, JOBS, body, format="json"), 400, field, sent)


@pytest.mark.parametrize("size", [MB + 1, 10 * MB], ids=["just-over-1MB", "10MB"])
def test_large_bodies_answer_413_json_naming_the_body(api, sent, committed, size: int) -> None:
    body = '{"name": "' + "x" * (size - 12) + '"}'
    assert len(body) >= size
    assert_refused(committed(post_raw, api, JOBS, body), 413, "body", sent)


def test_a_large_form_body_answers_413_json_too(api, sent, committed) -> None:
    body = "name=" + "x" * (10 * MB)
    response = committed(post_raw, api, JOBS, body, "application/x-www-form-urlencoded")
    assert_refused(response, 413, "body", sent)


def test_a_body_within_the_bound_still_creates_the_job(api, sent, committed) -> None:
    response = committed(api.post, JOBS, {"name": "y" * 200, "rounds": 2, "seed": 2**32 - 1}, format="json")
    assert response.status_code == 201, response.content
    assert Job.objects.count() == 1 and len(sent) == 1


def test_nesting_at_the_bound_passes_the_depth_scan() -> None:
    at_bound = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert not nesting_exceeds(at_bound, MAX_JSON_DEPTH)
    assert nesting_exceeds("[" + at_bound + "]", MAX_JSON_DEPTH)
    # Brackets inside strings (escaped quotes included) are text, not nesting.
    assert not nesting_exceeds(json.dumps({"a": '"[' * 1000}), MAX_JSON_DEPTH)


@override_settings(FLOTILLA_MAX_JOB_WORK=1_000)
def test_the_work_budget_names_the_product_and_the_limit(api, sent, committed) -> None:
    response = committed(api.post, JOBS, {"num_clients": 2, "rounds": 3, "local_epochs": 2}, format="json")
    assert_refused(response, 400, "rounds", sent)
    message = response.json()["errors"][0]["message"]
    # digits: 1797 examples over 2 clients -> 899 each, x 2 clients x 2 epochs x 3 rounds.
    assert "899" in message and str(899 * 2 * 2 * 3) in message and "1000" in message


# --- the intents endpoint reads the same bodies through the same parser ---------------------


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        pytest.param(NESTED_ARRAYS, 400, "body", id="100000-nested-arrays"),
        pytest.param(DEEP_OBJECT, 400, "body", id="5000-deep-object"),
        pytest.param('{"prompt": "' + "x" * (10 * MB) + '"}', 413, "body", id="10MB"),
        pytest.param(json.dumps({"prompt": "ten rounds\x00"}), 400, "prompt", id="prompt-NUL"),
    ],
)
def test_intents_refuse_bad_bodies_by_name(api, sent, committed, body: str, status: int, field: str) -> None:
    assert_refused(committed(post_raw, api, INTENTS, body), status, field, sent)


# --- admission lets every preset through -------------------------------------------------------


def _demo_csv(path: Path, rows: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["text,label"] + [f"review number {i},{i % 2}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("preset", PRESETS, ids=[preset.key for preset in PRESETS])
@pytest.mark.parametrize("hpo", [False, True], ids=["job", "as-hpo-search"])
def test_every_preset_is_admitted_with_margin(tmp_path: Path, preset, hpo: bool) -> None:
    from django.conf import settings

    from orchestrator.fl.text_data import DEFAULT_DEMO_SIZE

    raw = dict(preset.spec)
    if raw.get("dataset") == "csv":  # the demo set's size, written here (no download in tests)
        raw["dataset_path"] = str(_demo_csv(tmp_path / "movie_reviews.csv", DEFAULT_DEMO_SIZE))
    if hpo:
        raw["hpo"] = {"enabled": True, "trials": 20}
    spec = JobSpec.model_validate(raw)
    assert admission_errors(spec, active_jobs=0) == []
    if raw.get("dataset") == "csv":
        assert dataset_examples(spec) == DEFAULT_DEMO_SIZE
    assert spec.clients_per_round is not None
    work = job_work(
        spec, rounds=spec.rounds, local_epochs=spec.local_epochs, clients_per_round=spec.clients_per_round
    )
    assert 0 < work * 100 < settings.FLOTILLA_MAX_JOB_WORK


def test_a_csv_without_a_final_newline_counts_its_last_row(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("a,label\n1,0\n2,1", encoding="utf-8")
    spec = JobSpec.model_validate({"dataset": "csv", "dataset_path": str(path)})
    assert dataset_examples(spec) == 2
