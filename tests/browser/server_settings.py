"""Settings of the daphne server that the browser tests start (see conftest.py).

The test settings (so a user the test creates with the test password hasher
can sign in through the browser), but with the model preloaded at start-up
(``MODEL_PRELOAD=1``), as in production, so the first page does not wait.
The database comes from the environment the fixture sets: ``SQLITE_PATH``
(or ``DATABASE_URL``) pointing at the test process's own test database.
"""

from tokenwheel_site.settings import MODELWORKER as _RUNTIME_MODELWORKER
from tokenwheel_site.test_settings import *  # noqa: F401,F403

MODELWORKER = {**_RUNTIME_MODELWORKER}  # PRELOAD from MODEL_PRELOAD, not forced off

# Several people edit static files in this tree while tests run: re-read them
# on each request (WhiteNoise otherwise keeps each file's size from start-up and
# serves a file edited since then truncated).
WHITENOISE_AUTOREFRESH = True
