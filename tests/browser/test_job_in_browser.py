"""Headless Chromium against a live server and a real worker: log in, create a job from
the form, watch the chart reach the final round, check the rounds table."""

from __future__ import annotations

import re
import time

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from orchestrator.models import Job
from orchestrator.services import jobs

from .pages import OUTPUT, log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

ROUNDS = 3
SLOW_CLIENTS = 4
SLOW = {
    "dataset": "digits",
    "model": "mlp",
    "num_clients": SLOW_CLIENTS,
    "rounds": 2,
    "local_epochs": 100,
    "batch_size": 16,
}


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


def test_a_slow_round_shows_its_clients_as_they_report(
    celery_worker: str, live_server_url: str, page: Page
) -> None:
    log_in(page, f"{live_server_url}/jobs/", "watcher", "Jobs")
    owner = User.objects.get(username="watcher")
    # Clients that train a few seconds each: the round takes a while after the first reports.
    job = jobs.job_create(owner=owner, spec={**SLOW, "name": "slow rounds"})
    page.goto(f"{live_server_url}/jobs/{job.pk}/")

    done = page.locator("#round-clients-done")
    live = page.locator("#job-live")
    some_reported = re.compile(rf"^[1-{SLOW_CLIENTS - 1}] of {SLOW_CLIENTS} clients done$")
    expect(done).to_have_text(some_reported, timeout=120_000)
    # Round 1 has not ended, and the bar has moved.
    assert live.get_attribute("data-current-round") == "0"
    assert int(page.locator("#job-live progress").get_attribute("value") or 0) > 0
    expect(page.locator("#round-clients tbody tr").first).to_be_visible()

    # A page opened now shows the clients that already reported.
    second = page.context.new_page()
    second.goto(f"{live_server_url}/jobs/{job.pk}/")
    expect(second.locator("#round-clients tbody tr").first).to_be_visible()
    second.close()

    expect(live).to_have_attribute("data-status", "succeeded", timeout=240_000)
