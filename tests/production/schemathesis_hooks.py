"""Schemathesis hooks for test_schemathesis.py (loaded with SCHEMATHESIS_HOOKS).

Most generated session ids are random UUIDs, which only ever reach the 404
path. Swap most of them for live sessions (ids in TW_LIVE_SESSIONS) so the
fuzzer reaches the model, the database and the maths behind each operation.
DELETE keeps its random ids, so the live sessions survive the run.
"""

import os
import random

import schemathesis

LIVE = [s for s in os.environ.get("TW_LIVE_SESSIONS", "").split(",") if s]
_rng = random.Random(7)


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):
    if (
        LIVE
        and path_parameters
        and "session_id" in path_parameters
        and ctx.operation.method.upper() != "DELETE"
        and _rng.random() < 0.75
    ):
        path_parameters["session_id"] = _rng.choice(LIVE)
    return path_parameters
