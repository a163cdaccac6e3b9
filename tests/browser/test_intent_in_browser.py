"""Headless Chromium: type a prompt, see the pre-filled spec, run it, land on the live job page."""

from __future__ import annotations

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

PROMPT = "train an mlp on the sklearn digits with 4 clients for 3 rounds, batch size 64, non-iid, call it 'from a prompt'"


def test_a_prompt_becomes_a_prefilled_spec_that_runs_live(
    celery_worker: str, live_server_url: str, page: Page
) -> None:
    log_in(page, f"{live_server_url}/jobs/new/", "prompter", "New job")

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

    # hpo.fixed: the searchable fields the prompt set start pinned; a field the user edits gets
    # pinned too, and a pin the user unticks stays released.
    pin = '#f-hpo-fixed input[data-pin="{}"]'.format
    expect(page.locator(pin("rounds"))).to_be_checked()
    expect(page.locator(pin("batch_size"))).to_be_checked()
    expect(page.locator(pin("learning_rate"))).not_to_be_checked()
    page.click("#edit-parsed")
    page.fill("#f-rounds", "2")
    page.fill("#f-learning-rate", "0.01")
    expect(page.locator(pin("learning_rate"))).to_be_checked()
    page.uncheck(pin("batch_size"))
    page.fill("#f-batch-size", "32")
    expect(page.locator(pin("batch_size"))).not_to_be_checked()
    page.click("#run-parsed")

    expect(page.locator("h1")).to_contain_text("from a prompt", timeout=30_000)
    job = Job.objects.get(name="from a prompt")
    assert page.url.endswith(f"/jobs/{job.pk}/")
    assert job.prompt == PROMPT and job.spec["rounds"] == 2 and job.spec["num_clients"] == 4
    assert job.spec["batch_size"] == 32 and set(job.spec["hpo"]["fixed"]) == {"rounds", "learning_rate"}
    expect(page.locator("#job-prompt")).to_contain_text("4 clients for 3 rounds")
    expect(page.locator("#charts")).to_have_attribute("data-last-round", "2", timeout=240_000)
    page.screenshot(path=str(OUTPUT / "prompt-job-page.png"), full_page=True)
