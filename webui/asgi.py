"""The ASGI application: Django for HTTP, Channels for WebSockets (served by uvicorn)."""

from __future__ import annotations

import os
import threading
from typing import Any

import django
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webui.settings")
django.setup(set_prefix=False)


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGI handler running the middleware chain and the view in one thread switch.

    Every view and middleware here is synchronous. The stock handler builds an async chain,
    in which each middleware's request and response hook, and then the view, switch threads
    (sync_to_async); under load that cost as much CPU as the requests' own work. The chain
    built for sync runs each request in the request's own thread, entered once.
    """

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        response: Any = await sync_to_async(self.get_response, thread_sensitive=True)(request)
        return response


django_asgi_app = SyncChainASGIHandler()


def _preload_intent_parser() -> None:
    from .intents import intent_parser_preload  # the parser's model code: a slow import as well

    intent_parser_preload()


if settings.FLOTILLA_INTENT_PRELOAD:  # so the first prompt finds the parser loaded
    threading.Thread(target=_preload_intent_parser, name="intent-parser-import", daemon=True).start()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from .routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
