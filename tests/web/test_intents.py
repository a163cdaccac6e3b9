"""The prompt box and POST /api/intents/parse: same answers as the CLI, size limit, rate limit."""

from __future__ import annotations

import threading
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from intent_llm.parser import MAX_PROMPT_CHARS
from orchestrator.models import Job
from orchestrator.services import accounts
from webui import intents

PROMPT = "fmnist mlp 40 clients label-skewed alpha .3 fedprox mu 1e-2 compress to 4-bit qsgd"


pytestmark = pytest.mark.usefixtures("fresh_rate_limits")


@pytest.fixture(scope="module")
def cli_parser():
    from intent_llm.loading import load_parser

    return load_parser()


@pytest.mark.django_db
def test_api_returns_the_same_json_as_the_cli(logged_in: Client, cli_parser) -> None:
    response = logged_in.post("/api/intents/parse", {"prompt": PROMPT}, content_type="application/json")
    assert response.status_code == 200
    assert response.json() == cli_parser.parse(PROMPT).to_json()
    body = response.json()
    assert body["dataset"] == "fashion_mnist" and body["partition"]["alpha"] == 0.3
    assert "proximal_mu" in body["mentioned"]


@pytest.mark.django_db
def test_api_refusals_and_bad_requests(logged_in: Client, user: User) -> None:
    refused = logged_in.post(
        "/api/intents/parse", {"prompt": "tell me a joke"}, content_type="application/json"
    )
    assert refused.status_code == 422 and list(refused.json()) == ["error"]
    too_long = logged_in.post(
        "/api/intents/parse", {"prompt": "x" * (MAX_PROMPT_CHARS + 1)}, content_type="application/json"
    )
    assert too_long.status_code == 413 and str(MAX_PROMPT_CHARS) in too_long.json()["error"]
    missing = logged_in.post("/api/intents/parse", {"text": "mnist"}, content_type="application/json")
    assert missing.status_code == 400
    _, token = accounts.api_token_create(user=user)
    anonymous = Client().post("/api/intents/parse", {"prompt": PROMPT}, content_type="application/json")
    assert anonymous.status_code in (401, 403)
    with_token = Client().post(
        "/api/intents/parse",
        {"prompt": PROMPT},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    assert with_token.status_code == 200


@pytest.mark.django_db
def test_api_is_rate_limited_per_user(logged_in: Client, make_user) -> None:
    limit = int(settings.FLOTILLA_INTENT_RATE.split("/")[0])
    codes = [
        logged_in.post("/api/intents/parse", {"prompt": PROMPT}, content_type="application/json").status_code
        for _ in range(limit + 1)
    ]
    assert codes[:limit] == [200] * limit and codes[-1] == 429
    other = Client()
    other.force_login(make_user("bob"))
    assert (
        other.post("/api/intents/parse", {"prompt": PROMPT}, content_type="application/json").status_code
        == 200
    )


@pytest.mark.django_db
def test_prompt_box_is_on_the_new_job_page(logged_in: Client) -> None:
    page = logged_in.get("/jobs/new/").content.decode()
    assert 'id="prompt-form"' in page and 'hx-post="/jobs/new/parse/"' in page


@pytest.mark.django_db
def test_htmx_parse_returns_the_prefilled_form_with_highlights_and_warnings(logged_in: Client) -> None:
    response = logged_in.post(
        "/jobs/new/parse/", {"prompt": "cnn on mnist, 20 clients, non-iid"}, HTTP_HX_REQUEST="true"
    )
    page = response.content.decode()
    assert response.status_code == 200 and 'id="job-form"' in page
    assert 'data-field="num_clients"' in page and 'value="20"' in page
    assert 'highlighted" data-field="num_clients"' in page
    assert 'has-warning" data-field="partition.alpha"' in page  # plain non-IID: alpha 0.5 assumed
    assert 'name="prompt" value="cnn on mnist, 20 clients, non-iid"' in page
    assert 'id="run-parsed"' in page and 'id="edit-parsed"' in page


@pytest.mark.django_db
def test_htmx_refusal_goes_to_the_prompt_box(logged_in: Client) -> None:
    response = logged_in.post("/jobs/new/parse/", {"prompt": "write me a poem"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response["HX-Retarget"] == "#prompt-result"
    assert 'id="prompt-error"' in response.content.decode()


@pytest.mark.django_db
def test_without_javascript_the_whole_page_comes_back_filled(logged_in: Client) -> None:
    response = logged_in.post("/jobs/new/parse/", {"prompt": "cifar10 resnet18 with 8 clients"})
    page = response.content.decode()
    assert response.status_code == 200 and "<h1>New job</h1>" in page
    assert '<option value="cifar10" selected>' in page and 'id="parsed-summary"' in page


class _FormValues(HTMLParser):
    """What a browser would submit from the page's #job-form."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, list[str]] = {}
        self.select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        name = attr.get("name")
        if tag == "input" and name and name != "csrfmiddlewaretoken":
            if attr.get("type") == "checkbox":
                if "checked" in attr:
                    self.values.setdefault(name, []).append(attr.get("value") or "on")
            else:
                self.values[name] = [attr.get("value") or ""]
        elif tag == "select":
            self.select = name
        elif tag == "option" and self.select and "selected" in attr:
            self.values[self.select] = [attr.get("value") or ""]

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self.select = None


@pytest.mark.django_db
def test_running_the_parsed_form_stores_the_prompt(logged_in: Client, broker) -> None:
    prompt = "digits mlp 3 clients 2 rounds batch 64"
    parsed = logged_in.post("/jobs/new/parse/", {"prompt": prompt}, HTTP_HX_REQUEST="true")
    reader = _FormValues()
    reader.feed(parsed.content.decode())
    response = logged_in.post("/jobs/new/", reader.values)
    assert response.status_code == 302, response.content.decode()[:2000]
    job = Job.objects.get()
    assert job.prompt == prompt
    assert job.spec["dataset"] == "digits" and job.spec["model"] == "mlp"
    assert job.spec["num_clients"] == 3 and job.spec["rounds"] == 2 and job.spec["batch_size"] == 64
    # The searchable fields the prompt set are pinned for a later search; data and clients never move.
    assert set(job.spec["hpo"]["fixed"]) == {"rounds", "batch_size"}
    detail = logged_in.get(f"/jobs/{job.pk}/").content.decode()
    assert 'id="job-prompt"' in detail and prompt in detail


@pytest.mark.django_db
def test_a_prompt_before_the_parser_has_loaded_is_told_to_try_again(
    logged_in: Client, monkeypatch: pytest.MonkeyPatch, settings
) -> None:
    parser = intents.intent_parser()  # the real one, loaded once for the session
    release = threading.Event()
    loading = intents._ParserLoad()

    def slow_load() -> None:
        release.wait(timeout=60)
        loading.parser = parser
        loading.done.set()

    monkeypatch.setattr(loading, "_load", slow_load)
    monkeypatch.setattr(intents, "_load", loading)
    settings.FLOTILLA_INTENT_WAIT_SECONDS = 0.1

    api = logged_in.post("/api/intents/parse", {"prompt": PROMPT}, content_type="application/json")
    assert api.status_code == 503 and api["Retry-After"] == "5"
    assert api.json()["error"] == intents.STILL_LOADING
    box = logged_in.post("/jobs/new/parse/", {"prompt": PROMPT}, HTTP_HX_REQUEST="true")
    assert "still starting" in box.content.decode()

    release.set()
    assert loading.done.wait(timeout=10)
    answer = logged_in.post("/api/intents/parse", {"prompt": PROMPT}, content_type="application/json")
    assert answer.status_code == 200 and answer.json()["dataset"] == "fashion_mnist"
