"""Headless Chromium: type a prompt, see the pre-filled spec, run it, land on the live job page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, expect, sync_playwright

from orchestrator.models import Job

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "browser"
PASSWORD = "a-long-browser-password"
PROMPT = "train an mlp on the sklearn digits with 4 clients for 3 rounds, batch size 64, non-iid, call it 'from a prompt'"


@pytest.fixture(scope="module")
def orm_beside_playwright() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def browser(orm_beside_playwright: None) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: ./test installs Debian's chromium package")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    yield opened
    context.close()
    assert errors == [], f"the page reported errors: {errors}"


def test_a_prompt_becomes_a_prefilled_spec_that_runs_live(
    celery_worker: str, live_server_url: str, page: Page
) -> None:
    User.objects.create_user(username="prompter", password=PASSWORD)
    page.goto(f"{live_server_url}/jobs/new/")
    page.fill("#id_username", "prompter")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("New job")

    page.fill("#prompt-input", "tell me a joke")
    page.click("#prompt-submit")
    expect(page.locator("#prompt-error")).to_be_visible(timeout=60_000)  # the first parse loads the model

    page.fill("#prompt-input", PROMPT)
    page.click("#prompt-submit")
    form = page.locator("form#job-form.parsed")
    expect(form).to_be_visible(timeout=60_000)
    expect(page.locator("#f-num-clients")).to_have_value("4")
    expect(page.locator("#f-rounds")).to_have_value("3")
    expect(page.locator("#f-batch-size")).to_have_value("64")
    expect(page.locator("#f-dataset")).to_have_value("digits")
    expect(page.locator("#f-model")).to_have_value("mlp")
    expect(page.locator('.field.highlighted[data-field="num_clients"]')).to_be_visible()
    expect(page.locator('.field.has-warning[data-field="partition.alpha"] .warning')).to_contain_text("0.5")
    expect(page.locator("#parsed-summary")).to_contain_text("num_clients")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "prompt-parsed.png"), full_page=True)

    page.click("#edit-parsed")
    page.fill("#f-rounds", "2")
    page.click("#run-parsed")

    expect(page.locator("h1")).to_contain_text("from a prompt", timeout=30_000)
    job = Job.objects.get(name="from a prompt")
    assert page.url.endswith(f"/jobs/{job.pk}/")
    assert job.prompt == PROMPT and job.spec["rounds"] == 2 and job.spec["num_clients"] == 4
    expect(page.locator("#job-prompt")).to_contain_text("4 clients for 3 rounds")
    expect(page.locator("#charts")).to_have_attribute("data-last-round", "2", timeout=240_000)
    page.screenshot(path=str(OUTPUT / "prompt-job-page.png"), full_page=True)
