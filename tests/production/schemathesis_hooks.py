"""Schemathesis hooks for test_schemathesis.py (loaded with SCHEMATHESIS_HOOKS).

Most generated ids are random UUIDs, which only ever reach the 404 path.
Swap most of them for live ones (wheel sessions in TW_LIVE_SESSIONS,
playground runs in TW_LIVE_RUNS) so the fuzzer reaches the model, the
database and the maths behind each operation. DELETE keeps its random ids,
so the live objects survive the run. The playground-run operations are for
a signed-in user: they go with that user's session cookie and a CSRF token
(TW_SESSIONID), else they would only ever answer 403.
"""

import os
import random

import schemathesis

LIVE = {
    "session_id": [s for s in os.environ.get("TW_LIVE_SESSIONS", "").split(",") if s],
    "run_id": [s for s in os.environ.get("TW_LIVE_RUNS", "").split(",") if s],
}
SESSIONID = os.environ.get("TW_SESSIONID", "")
CSRF_TOKEN = "s" * 32
SIGNED_IN_PATHS = ("/api/playground/runs",)
_rng = random.Random(7)


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):
    if not path_parameters or ctx.operation.method.upper() == "DELETE":
        return path_parameters
    for name, live in LIVE.items():
        if live and name in path_parameters and _rng.random() < 0.75:
            path_parameters[name] = _rng.choice(live)
    return path_parameters


@schemathesis.hook
def before_call(ctx, case, kwargs):
    if SESSIONID and case.operation.path.startswith(SIGNED_IN_PATHS):
        case.cookies = {**(case.cookies or {}), "sessionid": SESSIONID, "csrftoken": CSRF_TOKEN}
        case.headers = {**(case.headers or {}), "X-CSRFToken": CSRF_TOKEN}
