"""A user's account: their API token."""

from __future__ import annotations

from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token


def api_token_regenerate(*, user: User) -> Token:
    """A new API token for the user; the old one stops working."""
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)
