"""API token authentication: django-rest-knox's, with one query per request instead of two."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.models import AuthToken


class TokenAuthentication(KnoxTokenAuthentication):
    """knox checks every token of the user on each request to delete expired ones (one more
    query per API call); here only the presented token is checked. An expired token is still
    refused and deleted; the user's other expired tokens go when they next create one
    (services.accounts.api_token_create)."""

    def _cleanup_token(self, auth_token: AuthToken) -> bool:
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False


class TokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme of these tokens: knox's (drf-spectacular's extension names
    knox's class exactly, not its subclasses)."""

    target_class = "webui.authentication.TokenAuthentication"
