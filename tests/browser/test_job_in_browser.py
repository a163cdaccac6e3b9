"""Headless Chromium against a live server and a real worker: log in, create a job from
the form, watch the chart reach the final round, check the rounds table."""

from __future__ import annotations

import time
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
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "browser"
PASSWORD = "a-long-browser-password"
ROUNDS = 3


@pytest.fixture(scope="module")
def orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API keeps an event loop running in this thread while the browser is
    open; the test's own database calls are still synchronous and safe (Django's documented
    escape hatch), including the flush after each test."""
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


def test_a_job_from_the_form_runs_live_to_the_last_round(
    celery_worker: str, live_server_url: str, page: Page
) -> None:
    User.objects.create_user(username="browser", password=PASSWORD)
    page.goto(f"{live_server_url}/jobs/")
    page.fill("#id_username", "browser")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Jobs")

    page.click("text=New job")
    page.fill("#f-name", "browser test")
    page.select_option("#f-dataset", "digits")
    page.fill("#f-model", "mlp")
    page.fill("#f-num-clients", "4")
    page.fill("#f-rounds", str(ROUNDS))
    page.fill("#f-batch-size", "64")
    started = time.monotonic()
    page.click("button:has-text('Run job')")

    expect(page.locator("h1")).to_contain_text("browser test")
    job = Job.objects.get(name="browser test")
    assert page.url.endswith(f"/jobs/{job.pk}/")

    charts = page.locator("#charts")
    expect(charts).to_have_attribute("data-last-round", str(ROUNDS), timeout=240_000)
    expect(page.locator("#job-live")).to_have_attribute("data-status", "succeeded", timeout=60_000)
    elapsed = time.monotonic() - started
    expect(charts).to_have_attribute("data-points", str(ROUNDS))

    rows = page.locator("#rounds-body tr")
    expect(rows).to_have_count(ROUNDS)
    assert [rows.nth(i).get_attribute("data-round") for i in range(ROUNDS)] == ["1", "2", "3"]
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.final_accuracy is not None
    final_cell = rows.nth(ROUNDS - 1).locator("td").nth(1)
    expect(final_cell).to_have_text(f"{100 * job.final_accuracy:.1f}%")
    expect(page.locator(f"text=round {ROUNDS} of {ROUNDS}")).to_be_visible()

    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "job-page.png"), full_page=True)
    print(f"job {job.pk}: {ROUNDS} rounds from submit to final chart point in {elapsed:.1f} s")

    page.reload()  # a reload shows every round once: the table renders server-side
    expect(page.locator("#rounds-body tr")).to_have_count(ROUNDS)
    expect(page.locator("#download-weights")).to_be_visible()
