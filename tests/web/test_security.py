"""Security settings: a clean `check --deploy` over HTTPS, the Content-Security-Policy the pages
work under, login throttling (django-axes) and the admin password's validation."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, override_settings

from orchestrator.models import Job
from orchestrator.services import accounts, jobs

PASSWORD = "a-long-test-password"
TINY = {"dataset": "digits", "model": "mlp", "num_clients": 3, "rounds": 2, "batch_size": 64}


# --- HTTPS settings ------------------------------------------------------------------------------


def test_the_deploy_check_passes_with_https_on() -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webui.settings",
        "DEBUG": "false",
        "FLOTILLA_HTTPS": "1",
        "SECRET_KEY": secrets.token_urlsafe(50),
    }
    run = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "WARNINGS" not in run.stdout + run.stderr
    assert "System check identified no issues" in run.stdout


def test_plain_http_stays_the_default() -> None:
    assert settings.FLOTILLA_HTTPS is False
    assert not settings.SECURE_SSL_REDIRECT
    assert not settings.SESSION_COOKIE_SECURE
    assert not settings.CSRF_COOKIE_SECURE


# --- Content-Security-Policy ---------------------------------------------------------------------


class InlineCode(HTMLParser):
    """Collects what the policy would refuse: inline scripts, on* handlers, style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script" and "src" not in names and names.get("type") != "application/json":
            self.found.append(f"inline <script> {attrs}")
        if tag == "style":
            self.found.append("a <style> block")
        for name, _ in attrs:
            if name.startswith("on") or name == "style":
                self.found.append(f"<{tag} {name}=...>")


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    return parser.found


def directives(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    parsed = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            parsed[words[0]] = words[1:]
    return parsed


@pytest.fixture
def job(broker, user: User) -> Job:
    return jobs.job_create(owner=user, spec={**TINY, "name": "csp"})


def assert_strict_policy(response) -> None:
    policy = directives(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "'self'" in policy["connect-src"]
    assert "ws://127.0.0.1:*" in policy["connect-src"]
    assert not any("unsafe" in source for sources in policy.values() for source in sources)


def test_the_login_page_has_the_policy_and_no_inline_code(db: None) -> None:
    response = Client().get("/accounts/login/")
    assert response.status_code == 200
    assert_strict_policy(response)
    assert inline_code(response.content.decode()) == []


@pytest.mark.parametrize("url", ["/jobs/", "/jobs/new/", "/data/", "/account/token/"])
def test_the_dashboard_pages_have_the_policy_and_no_inline_code(logged_in: Client, url: str) -> None:
    response = logged_in.get(url)
    assert response.status_code == 200
    assert_strict_policy(response)
    assert inline_code(response.content.decode()) == []


def test_the_job_page_has_the_policy_and_no_inline_code(logged_in: Client, job: Job) -> None:
    response = logged_in.get(f"/jobs/{job.pk}/")
    assert response.status_code == 200
    assert_strict_policy(response)
    html = response.content.decode()
    assert inline_code(html) == []
    # Data for job.js comes as JSON, which the policy lets through (it never runs).
    assert re.search(r'<script id="metric-labels" type="application/json">', html)
    assert 'ws-connect="/ws/jobs/' in html


def test_the_parsed_form_has_no_inline_handler(logged_in: Client) -> None:
    response = logged_in.post(
        "/jobs/new/parse/", {"prompt": "mnist mlp 10 clients 5 rounds"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="edit-parsed"' in html
    assert inline_code(html) == []


# --- login throttling ----------------------------------------------------------------------------


def fail_logins(client: Client, url: str, username: str, times: int) -> list[int]:
    return [
        client.post(url, {"username": username, "password": "wrong-password"}).status_code
        for _ in range(times)
    ]


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_repeated_wrong_passwords_lock_the_login_out(url: str, make_user) -> None:
    target = make_user("mallory-target", PASSWORD)
    target.is_staff = True  # the admin's login would let this user in
    target.save()
    limit = settings.AXES_FAILURE_LIMIT
    assert limit == 5
    client = Client()
    statuses = fail_logins(client, url, "mallory-target", limit + 1)
    # The first failures show the form again; from the limit on, axes answers 429.
    assert statuses[: limit - 1] == [200] * (limit - 1)
    assert statuses[-1] == 429
    # Now even the right password is refused, and nobody is logged in.
    right = client.post(url, {"username": "mallory-target", "password": PASSWORD})
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lockout_is_per_user_and_address(make_user) -> None:
    make_user("bob", PASSWORD)
    make_user("carol", PASSWORD)
    attacker = Client(REMOTE_ADDR="203.0.113.7")
    fail_logins(attacker, "/accounts/login/", "bob", settings.AXES_FAILURE_LIMIT)
    assert attacker.post("/accounts/login/", {"username": "bob", "password": PASSWORD}).status_code == 429
    # Bob from his own address, and another user from the attacker's, still log in.
    assert (
        Client(REMOTE_ADDR="198.51.100.2")
        .post("/accounts/login/", {"username": "bob", "password": PASSWORD})
        .status_code
        == 302
    )
    assert attacker.post("/accounts/login/", {"username": "carol", "password": PASSWORD}).status_code == 302


def test_api_tokens_are_not_throttled(make_user) -> None:
    user = make_user("dave", PASSWORD)
    client = Client()
    fail_logins(client, "/accounts/login/", "dave", settings.AXES_FAILURE_LIMIT + 1)
    _, token = accounts.api_token_create(user=user)
    response = Client().get("/api/jobs/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200


# --- the admin password --------------------------------------------------------------------------


def test_a_weak_admin_password_is_refused(db: None) -> None:
    with (
        override_settings(FLOTILLA_ADMIN_PASSWORD="x7#kq2z"),
        pytest.raises(CommandError, match="FLOTILLA_ADMIN_PASSWORD.*too short"),
    ):
        call_command("prepare")
    assert not User.objects.filter(username="admin").exists()


def test_a_common_admin_password_is_refused(db: None) -> None:
    with (
        override_settings(FLOTILLA_ADMIN_PASSWORD="password123"),
        pytest.raises(CommandError, match="FLOTILLA_ADMIN_PASSWORD.*too common"),
    ):
        call_command("prepare")


def test_a_good_admin_password_is_taken(db: None) -> None:
    with override_settings(FLOTILLA_ADMIN_PASSWORD="tidal-Barnacle-47-sextant"):
        call_command("prepare")
    admin = User.objects.get(username="admin")
    assert admin.is_superuser
    assert admin.check_password("tidal-Barnacle-47-sextant")
