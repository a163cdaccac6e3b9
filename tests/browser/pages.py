"""What the browser tests share besides fixtures: where screenshots go and logging in."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "browser"
PASSWORD = "a-long-browser-password"


def log_in(page: Page, url: str, username: str, heading: str) -> None:
    """Create `username`, open `url`, pass the login page and wait for the page's h1."""
    User.objects.create_user(username=username, password=PASSWORD)
    page.goto(url)
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text(heading)
