"""A user's account: their API tokens.

Tokens are django-rest-knox's: the database keeps a SHA-512 digest of each token and its first
15 characters (`token_key`, shown as the token's prefix and used to name it), never the token
itself, so the secret exists only in the answer to the request that created it. A token lives
for settings.REST_KNOX["TOKEN_TTL"] (FLOTILLA_API_TOKEN_TTL_DAYS) or until it is revoked.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.utils import timezone
from knox.models import AuthToken


def api_token_create(*, user: User) -> tuple[AuthToken, str]:
    """A new API token for the user: the stored row and the token, which is never readable again.
    The user's expired tokens are deleted meanwhile."""
    AuthToken.objects.filter(user=user, expiry__lt=timezone.now()).delete()
    instance, token = AuthToken.objects.create(user=user)
    return instance, token


def api_token_list(*, user: User) -> QuerySet[AuthToken]:
    """The user's tokens that still work, newest first (expired ones are deleted when used or when a new one is made)."""
    live = Q(expiry__isnull=True) | Q(expiry__gt=timezone.now())
    return AuthToken.objects.filter(live, user=user).order_by("-created")


def api_token_revoke(*, user: User, token_key: str) -> bool:
    """Revoke the user's token named by its prefix; False if the user has no such token."""
    deleted, _ = AuthToken.objects.filter(user=user, token_key=token_key).delete()
    return deleted > 0


def api_token_revoke_all(*, user: User) -> int:
    """Revoke every token of the user; how many there were."""
    deleted, _ = AuthToken.objects.filter(user=user).delete()
    return deleted
