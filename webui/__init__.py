"""Flotilla's Django project: settings, URLs, ASGI app, Celery app and every interface."""

from .celery import app as celery_app

__all__ = ["celery_app"]
