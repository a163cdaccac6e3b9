"""Headless Chromium against a live server and a real worker: log in, create a job from
the form, watch the chart reach the final round, check the rounds table."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from orchestrator.models import Job

from .pages import OUTPUT, log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

ROUNDS = 3


def test_a_job_from_the_form_runs_live_to_the_last_round(
    celery_worker: str, live_server_url: str, page: Page
) -> None:
    log_in(page, f"{live_server_url}/jobs/", "browser", "Jobs")

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
