"""Settings for pytest: PostgreSQL and Redis, isolated per test session.

`./test` starts the services. The variables can be overridden (for example
DATABASE_URL=sqlite:///... for a quick run of the tests that need no worker).
Each pytest session gets its own name (FLOTILLA_TEST_SESSION): its test database
is `test_<name>_<session>` (pytest-django creates and drops it), every Redis key
it uses carries the prefix `flotilla-test-<session>:`, and its files live in
var/test/<session>/. Sessions running at the same time on one machine therefore
never take each other's tasks, rows or files. The worker and server processes a
session starts inherit all of it through the environment.
"""

import os
from pathlib import Path

VAR_DIR = Path(__file__).resolve().parent.parent / "var"
TEST_SESSION = os.environ.setdefault("FLOTILLA_TEST_SESSION", f"s{os.getpid()}")
TEST_FILES_DIR = VAR_DIR / "test" / TEST_SESSION

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/flotilla")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("FLOTILLA_REDIS_PREFIX", f"flotilla-test-{TEST_SESSION}:")
os.environ.setdefault("FLOTILLA_DATA_DIR", str(TEST_FILES_DIR / "data"))
os.environ.setdefault("FLOTILLA_ARTIFACT_DIR", str(TEST_FILES_DIR / "artifacts"))
os.environ.setdefault("FLOTILLA_MODEL_DIR", str(TEST_FILES_DIR / "models"))
os.environ.setdefault("SECRET_KEY", "flotilla-tests-only")
os.environ.setdefault("FLOTILLA_DOWNLOAD", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Servers the tests start load the parser on first use, and a prompt waits for it: the tests of
# the background load set these themselves.
os.environ.setdefault("FLOTILLA_INTENT_PRELOAD", "0")
os.environ.setdefault("FLOTILLA_INTENT_WAIT_SECONDS", "600")

from webui.settings import *  # noqa: E402,F403  (reads the variables above)
from webui.settings import DATABASES  # noqa: E402

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": str(TEST_FILES_DIR / "db.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{TEST_SESSION}"}
