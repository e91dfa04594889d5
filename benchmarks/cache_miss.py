"""A cache miss over HTTP against the bare forward, with and without load
between: where the gap in ``run.py``'s first ratio comes from.

    .venv/bin/python benchmarks/cache_miss.py
    .venv/bin/python benchmarks/cache_miss.py --server-env OMP_WAIT_POLICY=PASSIVE   # sleep at once

Starts a server (the embedded default, with the given environment), makes
40 sessions on 62-token contexts that differ in their first token (so no
cache can answer), then times ``next-token-probs`` on each fresh one against
the same weights' bare forward in this process: 20 interleaved back to back
(as ``run.py`` does) and 20 with 0.3 s of quiet before each (a teacher's
first request). Prints both p50s and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (the project on the path, the settings named)
import httpx
from _server import Server
from run import CONTEXT_TAIL, Bare, expect, new_session

WARM = 4


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.server_env)
    bare = Bare(_common.torch_threads())
    contexts = bare.variants(CONTEXT_TAIL, 40)
    with Server("miss", Path(tempfile.mkdtemp()), **env) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        sessions = [new_session(c, text)[0] for text, _ in contexts]

        def http(i):
            started = time.perf_counter()
            expect(c.get(f"/api/sessions/{sessions[i]}/next-token-probs"))
            return time.perf_counter() - started

        timed = {"interleaved": ([], []), "apart": ([], [])}
        for i in range(40):
            kind = "interleaved" if i < 20 else "apart"
            if kind == "apart":
                time.sleep(0.3)
            b = bare.forward(contexts[i][1])
            if kind == "apart":
                time.sleep(0.3)
            h = http(i)
            if i % 20 >= WARM:
                timed[kind][0].append(b)
                timed[kind][1].append(h)
    print(f"server environment: {env or 'as shipped'}")
    for kind, (b, h) in timed.items():
        b50, h50 = statistics.median(b), statistics.median(h)
        print(f"  {kind:12} bare {1000 * b50:6.1f} ms   HTTP miss {1000 * h50:6.1f} ms   ratio {h50 / b50:.2f}")


if __name__ == "__main__":
    main()
