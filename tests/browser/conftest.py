"""Headless Chromium (Debian's package, driven by Playwright) and a logged-in page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Response, sync_playwright

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


# Chromium logs a refused inline script or style as a console error already; this also names
# the directive, and catches a violation from a script's own DOM changes.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline code"}`);
});
"""


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; the test fails if the page logged a JavaScript error or a Content-Security-
    Policy violation, or if one of the site's pages came without the policy."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    opened.on("response", lambda response: errors.extend(missing_policy(response)))
    yield opened
    context.close()
    assert errors == [], f"the page reported errors: {errors}"


def missing_policy(response: Response) -> list[str]:
    """An HTML page answered without a Content-Security-Policy header, as a reported error."""
    if response.request.resource_type != "document" or response.status >= 300:
        return []
    if "content-security-policy" in response.headers:
        return []
    return [f"{response.url} came without a Content-Security-Policy header"]
