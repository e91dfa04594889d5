"""Settings for the test suite: the real ones, minus what only slows tests down."""

from .settings import *  # noqa: F401,F403
from .settings import MODELWORKER
import os

# Tests load the model once, on first use, in the test process.
# The engine in the test process (the site's default runs it in a child
# process): tests drive and inspect it directly.
MODELWORKER = {**MODELWORKER, "PRELOAD": False, "BACKEND": os.environ.get("MODELWORKER_BACKEND", "inprocess")}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# One SQLite test database per test process, unless one is named: two test
# runs on one checkout (a developer's and an editor's, say) must not share a file.
if DATABASES["default"]["ENGINE"].endswith("sqlite3") and not os.environ.get("SQLITE_TEST_PATH"):  # noqa: F405
    DATABASES["default"]["TEST"]["NAME"] = str(BASE_DIR / "var" / f"test-db-{os.getpid()}.sqlite3")  # noqa: F405
