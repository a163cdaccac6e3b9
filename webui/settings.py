"""Django settings for Flotilla, read from environment variables with defaults.

Every variable is documented in README.md ("Configuration"). The defaults give a
single-machine setup: SQLite under var/, Redis on localhost, files under var/.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

from intent_llm.configuration import BackendSettings, ConfigurationError
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

# --- HTTPS (README, "Security settings"): off by default so http://127.0.0.1 keeps working ---
FLOTILLA_HTTPS = env_bool("FLOTILLA_HTTPS", False)
if FLOTILLA_HTTPS:
    SECURE_SSL_REDIRECT = True
    # Load balancers probe over plain http.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Browsers remember HSTS for this long: start lower while trying HTTPS out.
    SECURE_HSTS_SECONDS = env_int("FLOTILLA_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("FLOTILLA_HSTS_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("FLOTILLA_HSTS_PRELOAD", True)
# Behind a proxy that ends TLS and sets X-Forwarded-Proto (and drops a client's own): trust it,
# or the redirect to https would loop. Never set this without such a proxy in front.
if env_bool("FLOTILLA_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "channels",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "axes",
    "csp",
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
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout response.
    "axes.middleware.AxesMiddleware",
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
# PostgreSQL: a connection pool per process (psycopg_pool through Django's "pool" option) instead
# of persistent connections, which under ASGI pile up, one per request thread, until the server
# refuses more. FLOTILLA_DB_POOL_SIZE caps each process's connections: the web server and every
# Celery worker process (the main process and each of its FLOTILLA_WORKER_CONCURRENCY children)
# has its own pool, so the database sees up to FLOTILLA_DB_POOL_SIZE x (2 + concurrency) per
# machine, plus one pool per extra web worker. A request waits up to 10 s for a free connection.
FLOTILLA_DB_POOL_SIZE = env_int("FLOTILLA_DB_POOL_SIZE", 10)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    if FLOTILLA_DB_POOL_SIZE < 1:
        raise ImproperlyConfigured(f"FLOTILLA_DB_POOL_SIZE={FLOTILLA_DB_POOL_SIZE}: must be at least 1")
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections; Django must not
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": FLOTILLA_DB_POOL_SIZE,
        "timeout": 10,
        "max_idle": 60,  # an idle connection above min_size closes after this (one per period)
    }
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
if REDIS_KEY_PREFIX:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": REDIS_KEY_PREFIX}
# No result backend: tasks record what they did in the database and nothing waits on a
# task's result (a Redis result store would also have to be reconnected after a restart).
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "jobs"
# Round work is long and deterministic: hand tasks out one at a time so a second worker
# gets a share, acknowledge after running so a crashed worker's task is delivered again.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Each pool process warms the engine up before its first task (webui.celery.warm_up_engine):
# allow it that long to report ready (Celery's default is 4 s).
FLOTILLA_WORKER_WARM_UP = env_bool("FLOTILLA_WORKER_WARM_UP", True)
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 60.0
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

# --- files ---
FLOTILLA_DATA_DIR = env_path("FLOTILLA_DATA_DIR", VAR_DIR / "data")
FLOTILLA_ARTIFACT_DIR = env_path("FLOTILLA_ARTIFACT_DIR", VAR_DIR / "artifacts")
FLOTILLA_MODEL_DIR = env_path("FLOTILLA_MODEL_DIR", VAR_DIR / "models")
# Fetched source archives (data sets' downloads), shared by every data directory.
FLOTILLA_CACHE_DIR = env_path("FLOTILLA_CACHE_DIR", VAR_DIR / "cache")
FLOTILLA_MAX_UPLOAD_MB = env_int("FLOTILLA_MAX_UPLOAD_MB", 50)
# The largest request body the API parses (webui.parsers; 413 above it), and Django's own
# bound for other non-file posts: a job spec is a few KB, so 1 MB leaves room without memory risk.
FLOTILLA_MAX_BODY_BYTES = env_int("FLOTILLA_MAX_BODY_BYTES", 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = FLOTILLA_MAX_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- admission limits (per job, and per user for concurrency) ---
FLOTILLA_MAX_CLIENTS = env_int("FLOTILLA_MAX_CLIENTS", 200)
FLOTILLA_MAX_ROUNDS = env_int("FLOTILLA_MAX_ROUNDS", 500)
# Jobs that could never finish are refused before queueing: epochs per round, trials per search,
# and a per-job work budget in example passes (orchestrator.limits.job_work; 5e8 = 500 full-data
# rounds of 16 epochs on MNIST).
FLOTILLA_MAX_LOCAL_EPOCHS = env_int("FLOTILLA_MAX_LOCAL_EPOCHS", 100)
FLOTILLA_MAX_HPO_TRIALS = env_int("FLOTILLA_MAX_HPO_TRIALS", 200)
FLOTILLA_MAX_JOB_WORK = env_int("FLOTILLA_MAX_JOB_WORK", 500_000_000)
FLOTILLA_MAX_CONCURRENT_JOBS = env_int("FLOTILLA_MAX_CONCURRENT_JOBS", 4)
# A round fails the job when more than this fraction of its selected clients failed.
FLOTILLA_MAX_CLIENT_FAILURE_FRACTION = env_float("FLOTILLA_MAX_CLIENT_FAILURE_FRACTION", 0.5)
# --- liveness (services.recovery.work_reclaim, run by every worker's timer: webui.celery) ---
# A claimed client update holds a lease this long; its training extends it between batches,
# and any live worker reclaims an expired one (re-sends it, or fails the client after
# FLOTILLA_CLIENT_MAX_ATTEMPTS claims). Must exceed the longest pause between two batches.
FLOTILLA_LEASE_SECONDS = env_float("FLOTILLA_LEASE_SECONDS", 30.0)
FLOTILLA_CLIENT_MAX_ATTEMPTS = env_int("FLOTILLA_CLIENT_MAX_ATTEMPTS", 3)
# How often each worker sweeps: expired leases, lost messages, cancelling jobs, its heartbeat.
FLOTILLA_RECLAIM_SECONDS = env_float("FLOTILLA_RECLAIM_SECONDS", 10.0)
# A round that has not moved for this long is shown as stalled (job page, /healthz); past
# FLOTILLA_STALL_FAIL_SECONDS its job fails with the reason (0 = never).
FLOTILLA_STALL_SECONDS = env_float("FLOTILLA_STALL_SECONDS", 120.0)
FLOTILLA_STALL_FAIL_SECONDS = env_float("FLOTILLA_STALL_FAIL_SECONDS", 1800.0)
# Torch threads in each worker process; 0 = the machine's cores divided by the processes.
FLOTILLA_TORCH_THREADS = env_int("FLOTILLA_TORCH_THREADS", 0)
# Trials of one HPO study that run at the same time (each is a federated job on the workers).
FLOTILLA_HPO_PARALLEL_TRIALS = env_int("FLOTILLA_HPO_PARALLEL_TRIALS", 2)

# The prompt parser: which backend reads prompts (INTENT_BACKEND and friends, intent_llm's
# README), and how many prompts each user may parse (DRF's rate syntax: 30/min, 500/hour).
try:
    FLOTILLA_INTENT_BACKEND = BackendSettings.from_environment(os.environ)
except ConfigurationError as exc:
    raise ImproperlyConfigured(str(exc)) from None
# The web server loads the parser in the background at start (FLOTILLA_INTENT_PRELOAD); a prompt
# that comes before it is ready waits this long, then is told to try again.
FLOTILLA_INTENT_PRELOAD = env_bool("FLOTILLA_INTENT_PRELOAD", True)
FLOTILLA_INTENT_WAIT_SECONDS = env_float("FLOTILLA_INTENT_WAIT_SECONDS", 1.0)
FLOTILLA_INTENT_RATE = os.environ.get("FLOTILLA_INTENT_RATE", "30/min")
if not re.fullmatch(r"[1-9][0-9]*/(s|sec|m|min|h|hour|d|day)", FLOTILLA_INTENT_RATE):
    raise ImproperlyConfigured(
        f"FLOTILLA_INTENT_RATE={FLOTILLA_INTENT_RATE!r}: expected a count per unit, such as 30/min"
    )

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
# Applied to FLOTILLA_ADMIN_PASSWORD by `manage.py prepare` and to the admin's password forms.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The password `manage.py prepare` gives the `admin` user (None: a random one, kept in var/).
FLOTILLA_ADMIN_PASSWORD = os.environ.get("FLOTILLA_ADMIN_PASSWORD") or None

# Login throttling (django-axes): after FLOTILLA_LOGIN_FAILURES wrong passwords for one user
# name from one IP address, that pair is refused (HTTP 429) for FLOTILLA_LOGIN_COOLOFF_MINUTES,
# on the site's login page and the admin's alike. Keyed by the pair, so a guesser cannot lock
# a user out from another address. Axes' backend comes first: it refuses a locked-out pair
# before any password is checked. API tokens (django-rest-knox's TokenAuthentication) never go
# through authenticate(), so they are not throttled here.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("FLOTILLA_LOGIN_FAILURES", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("FLOTILLA_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429


def _websocket_sources(hosts: list[str], secure: bool) -> list[str]:
    """ws(s)://host:* for each allowed host: the live job page's socket. CSP Level 3 lets 'self'
    cover the page's own host over ws/wss (Chromium and Firefox do); older Safari needs them named."""
    schemes = ["wss"] if secure else ["ws", "wss"]
    sources = []
    for host in hosts:
        if not host or "*" in host or "[" in host:  # '*' allows any host; CSP cannot name IPv6
            continue
        name = f"*{host}" if host.startswith(".") else host
        sources += [f"{scheme}://{name}:*" for scheme in schemes]
    return sources


# Content-Security-Policy, set by django-csp's middleware (Django 5.2 has no CSP support of
# its own; Django 6 adds it). The templates carry no inline script, event handler or style
# attribute: scripts are the files under static/ (vendored ones included), and data reaches
# them in data- attributes or json_script blocks (type application/json, which never runs).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF, *_websocket_sources(ALLOWED_HOSTS, FLOTILLA_HTTPS)],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

REST_FRAMEWORK = {
    # Token first: a refused request then answers 401 with `WWW-Authenticate: Token` (the first
    # class names the scheme; with the session's first, a bad or revoked token answered 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "webui.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    # Bounded JSON (size, nesting, finite numbers) before anything reads it: webui.parsers.
    "DEFAULT_RENDERER_CLASSES": [
        "webui.renderers.FastJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "webui.parsers.BoundedJSONParser",
        "webui.parsers.BoundedFormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "webui.parsers.api_exception_handler",
    "PAGE_SIZE": 50,
}
# API tokens (django-rest-knox): stored as SHA-512 digests, shown once when created, sent as
# `Authorization: Token <token>`. Each lasts FLOTILLA_API_TOKEN_TTL_DAYS days (0: until revoked).
# Knox's default of 10 hours suits a login session, not a script; 90 days bounds how long a leaked
# token works while the token page shows every token's expiry so its owner can replace it in time.
_API_TOKEN_TTL_DAYS = env_int("FLOTILLA_API_TOKEN_TTL_DAYS", 90)
if _API_TOKEN_TTL_DAYS < 0:
    raise ImproperlyConfigured("FLOTILLA_API_TOKEN_TTL_DAYS must be 0 (no expiry) or more")
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=_API_TOKEN_TTL_DAYS) if _API_TOKEN_TTL_DAYS else None,
    "AUTH_HEADER_PREFIX": "Token",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Flotilla API",
    "DESCRIPTION": "Create, watch and manage federated learning jobs. A job is described by a JobSpec.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "OAS_VERSION": "3.1.0",
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
