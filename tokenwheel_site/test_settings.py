"""Settings for the test suite: the real ones, minus what only slows tests down."""

from .settings import *  # noqa: F401,F403
from .settings import MODELWORKER

# Tests load the model once, on first use, in the test process.
MODELWORKER = {**MODELWORKER, "PRELOAD": False}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
