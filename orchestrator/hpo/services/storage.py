"""The Optuna storage: this project's database, one connection pool per process."""

from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from django.db import connection
from optuna.storages import BaseStorage

from ..tpe import storage_for


def parallel_trials() -> int:
    return max(1, int(settings.FLOTILLA_HPO_PARALLEL_TRIALS))


def optuna_storage_url() -> str:
    """This project's database as an SQLAlchemy URL: Optuna keeps its study tables beside ours."""
    database = connection.settings_dict
    if database["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{database['NAME']}"
    user = quote(str(database["USER"]), safe="")
    password = f":{quote(str(database['PASSWORD']), safe='')}" if database.get("PASSWORD") else ""
    host = database.get("HOST") or "localhost"
    port = f":{database['PORT']}" if database.get("PORT") else ""
    return f"postgresql+psycopg://{user}{password}@{host}{port}/{database['NAME']}"


_STORAGES: dict[str, BaseStorage] = {}


def _storage(url: str) -> BaseStorage:
    """One Optuna storage (and connection pool) per database per process."""
    if url not in _STORAGES:
        _STORAGES[url] = storage_for(url)
    return _STORAGES[url]


def storages_close() -> None:
    """Close Optuna's database connections (before the database is dropped, in tests)."""
    for storage in _STORAGES.values():
        engine = getattr(storage, "engine", None)
        if engine is not None:
            engine.dispose()
    _STORAGES.clear()
