"""Headless Chromium against a live server and a real worker: ask for a search in the form,
watch its trials arrive on the study page, and apply the best spec."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from orchestrator.models import Job, Study

from .pages import OUTPUT, log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]
TRIALS = 2


def test_a_search_from_the_form_shows_its_trials_live_and_applies_the_best_spec(
    celery_worker: str, live_server_url: str, page: Page
) -> None:
    log_in(page, f"{live_server_url}/jobs/new/", "searcher", "New job")
    page.fill("#f-name", "search from the form")
    page.fill("#f-model", "mlp")
    page.fill("#f-num-clients", "3")
    page.fill("#f-rounds", "2")
    page.fill("#f-batch-size", "64")
    page.click("#g-hyper-parameter-search > summary")  # a closed group until opened
    page.check("#f-hpo-enabled")
    page.fill("#f-hpo-trials", str(TRIALS))
    # The fields just set are pinned for the search; the learning rate stays free.
    expect(page.locator('#f-hpo-fixed input[data-pin="rounds"]')).to_be_checked()
    expect(page.locator('#f-hpo-fixed input[data-pin="learning_rate"]')).not_to_be_checked()
    page.click("button:has-text('Run job')")

    expect(page.locator("h1")).to_contain_text("search from the form")
    parent = Job.objects.get(name="search from the form")
    study = Study.objects.get(job=parent)
    assert set(parent.spec["hpo"]["fixed"]) == {"rounds", "batch_size"}

    page.click("#open-study")
    expect(page.locator("h1")).to_contain_text("Hyper-parameter search")
    expect(page.locator("#trial-0")).to_be_visible(timeout=120_000)  # the polled partial brings it in
    expect(page.locator("#study-status")).to_have_attribute("data-status", "succeeded", timeout=300_000)
    rows = page.locator("#trials-table tbody tr")
    expect(rows).to_have_count(TRIALS)
    for number in range(TRIALS):
        expect(page.locator(f"#trial-{number}")).to_have_attribute("data-status", "complete")
    expect(page.locator("#best-test-accuracy")).to_be_visible()
    expect(page.locator("#cancel-study")).to_have_count(0)  # nothing left to cancel
    drawn = page.evaluate("() => Chart.getChart('chart-trials').data.datasets.length")
    assert drawn == TRIALS
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "study-page.png"), full_page=True)

    study.refresh_from_db()
    best = study.final_job
    assert best is not None and best.status == Job.Status.SUCCEEDED
    page.click("#apply-best")
    expect(page.locator("h1")).to_have_text("New job")
    expect(page.locator("#f-rounds")).to_have_value("2")
    expect(page.locator("#f-learning-rate")).to_have_value(str(best.spec["learning_rate"]))
