"""API tokens (django-rest-knox): stored hashed, shown once, listed by prefix, revoked one by one
or all at once, owner-only; and the migration that drops DRF's plaintext tokens."""

from __future__ import annotations

import importlib
import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client, override_settings
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.test import APIRequestFactory

from orchestrator.services import accounts
from webui.authentication import TokenAuthentication

pytestmark = pytest.mark.django_db

TOKEN_SHOWN = re.compile(r'<code id="api-token">([0-9a-f]+)</code>')


def create_on_page(client: Client) -> str:
    response = client.post("/account/token/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    found = TOKEN_SHOWN.search(response.content.decode())
    assert found, "the new token is shown in the answer to the POST"
    return found.group(1)


def api_get(token: str) -> int:
    return Client().get("/api/jobs/", HTTP_AUTHORIZATION=f"Token {token}").status_code


def test_the_token_is_stored_only_as_a_digest(logged_in: Client, user: User) -> None:
    token = create_on_page(logged_in)
    row = AuthToken.objects.get(user=user)
    assert row.digest == hash_token(token) and token.startswith(row.token_key)
    assert len(row.token_key) < len(token)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {AuthToken._meta.db_table}")
        stored = [str(value) for record in cursor.fetchall() for value in record]
    assert not any(token in value for value in stored)


def test_the_token_is_shown_once_and_then_only_its_prefix(logged_in: Client, user: User) -> None:
    token = create_on_page(logged_in)
    page = logged_in.get("/account/token/")
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    html = page.content.decode()
    assert token not in html and not TOKEN_SHOWN.search(html)
    assert AuthToken.objects.get(user=user).token_key in html


def test_the_token_works_in_the_authorization_header(logged_in: Client) -> None:
    token = create_on_page(logged_in)
    assert api_get(token) == 200
    assert api_get(token[:-1] + ("0" if token[-1] != "0" else "1")) == 401
    assert Client().get("/api/jobs/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code in (401, 403)


def test_a_revoked_token_is_refused(logged_in: Client, user: User) -> None:
    _, kept = accounts.api_token_create(user=user)
    revoked_row, revoked = accounts.api_token_create(user=user)
    response = logged_in.post(f"/account/token/{revoked_row.token_key}/revoke/")
    assert response.status_code == 302
    assert api_get(revoked) == 401
    assert api_get(kept) == 200
    assert logged_in.post(f"/account/token/{revoked_row.token_key}/revoke/").status_code == 404


def test_revoke_all_refuses_every_token_of_the_user_only(
    logged_in: Client, user: User, other_user: User
) -> None:
    mine = [accounts.api_token_create(user=user)[1] for _ in range(2)]
    _, theirs = accounts.api_token_create(user=other_user)
    assert logged_in.post("/account/token/revoke-all/").status_code == 302
    assert [api_get(token) for token in mine] == [401, 401]
    assert api_get(theirs) == 200
    assert "You have no API tokens" in logged_in.get("/account/token/").content.decode()


def test_another_users_token_cannot_be_revoked(logged_in: Client, other_user: User) -> None:
    row, theirs = accounts.api_token_create(user=other_user)
    assert logged_in.post(f"/account/token/{row.token_key}/revoke/").status_code == 404
    assert api_get(theirs) == 200
    assert row.token_key not in logged_in.get("/account/token/").content.decode()


def test_the_pages_require_a_login(user: User) -> None:
    row, token = accounts.api_token_create(user=user)
    anonymous = Client()
    for method, url in [
        ("get", "/account/token/"),
        ("post", "/account/token/"),
        ("post", f"/account/token/{row.token_key}/revoke/"),
        ("post", "/account/token/revoke-all/"),
    ]:
        response = getattr(anonymous, method)(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert AuthToken.objects.filter(user=user).count() == 1
    # Nor does a token stand in for a login on the pages.
    assert Client().get("/account/token/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 302


def test_revoking_takes_a_post(logged_in: Client, user: User) -> None:
    row, _ = accounts.api_token_create(user=user)
    assert logged_in.get(f"/account/token/{row.token_key}/revoke/").status_code == 405
    assert logged_in.get("/account/token/revoke-all/").status_code == 405
    assert AuthToken.objects.filter(user=user).count() == 1


def test_tokens_expire_after_the_configured_days(user: User) -> None:
    with override_settings(REST_KNOX={"TOKEN_TTL": timedelta(days=3), "AUTH_HEADER_PREFIX": "Token"}):
        row, token = accounts.api_token_create(user=user)
        assert abs(row.expiry - (timezone.now() + timedelta(days=3))) < timedelta(minutes=1)
        assert api_get(token) == 200
        AuthToken.objects.filter(pk=row.pk).update(expiry=timezone.now() - timedelta(seconds=1))
        assert list(accounts.api_token_list(user=user)) == []
        assert api_get(token) == 401
        assert not AuthToken.objects.filter(pk=row.pk).exists()  # deleted when used
    with override_settings(REST_KNOX={"TOKEN_TTL": None, "AUTH_HEADER_PREFIX": "Token"}):
        row, _ = accounts.api_token_create(user=user)
        assert row.expiry is None


def test_the_migration_drops_the_plaintext_tokens(user: User) -> None:
    migration = importlib.import_module("webui.migrations.0001_drop_plaintext_api_tokens")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id integer)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s)", ["0" * 40, user.pk])
    recorder = MigrationRecorder(connection)
    recorder.record_applied("authtoken", "0001_initial")
    with connection.schema_editor() as editor:
        migration.drop_plaintext_tokens(apps, editor)
    assert "authtoken_token" not in connection.introspection.table_names()
    assert not recorder.migration_qs.filter(app="authtoken").exists()
    with connection.schema_editor() as editor:
        migration.drop_plaintext_tokens(apps, editor)  # nothing to drop: does nothing


def test_a_request_checks_one_token_in_one_query(user: User, django_assert_num_queries) -> None:
    """Only the presented token is looked up (knox would read all the user's tokens too);
    the user's other expired tokens go when they make a new one."""
    _, token = accounts.api_token_create(user=user)
    old, _ = accounts.api_token_create(user=user)
    AuthToken.objects.filter(pk=old.pk).update(expiry=timezone.now() - timedelta(days=1))
    request = APIRequestFactory().get("/api/jobs/", HTTP_AUTHORIZATION=f"Token {token}")
    with django_assert_num_queries(1):
        authenticated, _ = TokenAuthentication().authenticate(request)
    assert authenticated == user
    assert AuthToken.objects.filter(pk=old.pk).exists()
    accounts.api_token_create(user=user)
    assert not AuthToken.objects.filter(pk=old.pk).exists()
