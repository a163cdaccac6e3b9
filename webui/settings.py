"""Django settings for Flotilla, read from environment variables with defaults.

Every variable is documented in README.md ("Configuration"). The defaults give a
single-machine setup: SQLite under var/, Redis on localhost, files under var/.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

from orchestrator.fl.config import EngineConfig, parse_bool

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"


def env_bool(name: str, default: bool) -> bool:
    """A boolean variable (the engine's words, fl.config); anything else stops the start, naming it."""
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return parse_bool(name, value)
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from None


def _env_number(name: str, default: float, kind: type[int] | type[float]) -> Any:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return kind(value)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name}={value!r}: expected {'a whole number' if kind is int else 'a number'}"
        ) from None


def env_int(name: str, default: int) -> int:
    return int(_env_number(name, default, int))


def env_float(name: str, default: float) -> float:
    return float(_env_number(name, default, float))


def env_path(name: str, default: Path) -> Path:
    return Path(os.environ.get(name, default)).expanduser().resolve()


def persistent_secret_key() -> str:
    """A random key kept in var/ so sessions survive restarts when SECRET_KEY is unset."""
    key_file = VAR_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text(encoding="utf-8").strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = get_random_secret_key()
    key_file.write_text(key, encoding="utf-8")
    key_file.chmod(0o600)
    return key


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY") or persistent_secret_key()
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "channels",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "orchestrator",
    "webui",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "webui.urls"
ASGI_APPLICATION = "webui.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database: SQLite under var/ unless DATABASE_URL names another (postgres://...) ---
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web server, worker children) write: wait for the lock instead of
    # failing, take it when the transaction starts, and let readers proceed during writes.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker and results, and the Channels layer ---
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# Prepended to every Redis key Flotilla uses, so several deployments (or test sessions)
# can share one Redis database without taking each other's tasks.
REDIS_KEY_PREFIX = os.environ.get("FLOTILLA_REDIS_PREFIX", "")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # redis-py 8 times reads out after 5 s by default, which would cut the layer's 5 s
        # blocking pops: allow longer.
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
            "prefix": f"{REDIS_KEY_PREFIX}flotilla:channels",
        },
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
if REDIS_KEY_PREFIX:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": REDIS_KEY_PREFIX}
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"global_keyprefix": REDIS_KEY_PREFIX}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "jobs"
# Round work is long and deterministic: hand tasks out one at a time so a second worker
# gets a share, acknowledge after running so a crashed worker's task is delivered again.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

# --- files ---
FLOTILLA_DATA_DIR = env_path("FLOTILLA_DATA_DIR", VAR_DIR / "data")
FLOTILLA_ARTIFACT_DIR = env_path("FLOTILLA_ARTIFACT_DIR", VAR_DIR / "artifacts")
FLOTILLA_MODEL_DIR = env_path("FLOTILLA_MODEL_DIR", VAR_DIR / "models")
# Fetched source archives (data sets' downloads), shared by every data directory.
FLOTILLA_CACHE_DIR = env_path("FLOTILLA_CACHE_DIR", VAR_DIR / "cache")
FLOTILLA_MAX_UPLOAD_MB = env_int("FLOTILLA_MAX_UPLOAD_MB", 50)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- admission limits (per job, and per user for concurrency) ---
FLOTILLA_MAX_CLIENTS = env_int("FLOTILLA_MAX_CLIENTS", 200)
FLOTILLA_MAX_ROUNDS = env_int("FLOTILLA_MAX_ROUNDS", 500)
FLOTILLA_MAX_CONCURRENT_JOBS = env_int("FLOTILLA_MAX_CONCURRENT_JOBS", 4)
# A round fails the job when more than this fraction of its selected clients failed.
FLOTILLA_MAX_CLIENT_FAILURE_FRACTION = env_float("FLOTILLA_MAX_CLIENT_FAILURE_FRACTION", 0.5)
# Torch threads in each worker process; 0 = the machine's cores divided by the processes.
FLOTILLA_TORCH_THREADS = env_int("FLOTILLA_TORCH_THREADS", 0)
# Trials of one HPO study that run at the same time (each is a federated job on the workers).
FLOTILLA_HPO_PARALLEL_TRIALS = env_int("FLOTILLA_HPO_PARALLEL_TRIALS", 2)

# The engine's configuration (orchestrator.fl.config): the web app and the workers
# hand it to the engine at their start, so the engine agrees with these settings.
FLOTILLA_ENGINE = EngineConfig(
    data_dir=FLOTILLA_DATA_DIR,
    model_dir=FLOTILLA_MODEL_DIR,
    cache_dir=FLOTILLA_CACHE_DIR,
    downloads_allowed=env_bool("FLOTILLA_DOWNLOAD", True),
    torch_threads=FLOTILLA_TORCH_THREADS,
)

# --- auth, API ---
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "job_list"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Flotilla API",
    "DESCRIPTION": "Create, watch and manage federated learning jobs. A job is described by a JobSpec.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- static files, served by WhiteNoise from the ASGI server straight from static/ ---
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
