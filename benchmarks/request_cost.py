#!/usr/bin/env python
"""What a request costs the server, with SQLite's connection pool off and on (issue 12).

    .venv/bin/python benchmarks/request_cost.py [--rounds 5] [--requests 300]

Two daphne servers of this checkout (embedded default), identical but for
``SQLITE_POOL_SIZE``: 0 opens a new SQLite connection per request (Django's
way under ASGI), 32 reuses pooled ones. Each serves ``GET /api/sessions/{id}``
(a session read: the web stack and the database, no model) in alternating
rounds, first from one client in sequence, then from 16 clients at once.
Reported per server: the server's CPU milliseconds per request (its process
CPU time over the round; the figure that load on a shared machine moves
least) and the client's p50 latency. Writes benchmarks/results/request_cost.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import httpx  # noqa: E402

from _server import Server, exclusive, machine_load, workdir  # noqa: E402
from run import ms, pct  # noqa: E402

CONCURRENT = 16


async def hammer(url, session_id, requests, clients) -> list[float]:
    latencies = []

    async def client(count):
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            for _ in range(count):
                t = time.perf_counter()
                r = await http.get(f"/api/sessions/{session_id}")
                r.raise_for_status()
                latencies.append(time.perf_counter() - t)

    await asyncio.gather(*(client(requests // clients) for _ in range(clients)))
    return latencies


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=320)
    args = parser.parse_args()
    work = workdir()
    pools = {"no pool (SQLITE_POOL_SIZE=0)": "0", "pool (SQLITE_POOL_SIZE=32)": "32"}
    figures = {name: {"sequential": [], "concurrent": []} for name in pools}
    with exclusive(), Server("cost-a", work, SQLITE_POOL_SIZE="0") as a, Server("cost-b", work, SQLITE_POOL_SIZE="32") as b:
        servers = dict(zip(pools, (a, b)))
        ids = {}
        for name, server in servers.items():
            with httpx.Client(base_url=server.url, timeout=60) as http:
                ids[name] = http.post("/api/sessions", json={}).raise_for_status().json()["session_id"]
        load_before = machine_load()
        for _ in range(args.rounds):
            for mode, clients in (("sequential", 1), ("concurrent", CONCURRENT)):
                for name, server in servers.items():
                    asyncio.run(hammer(server.url, ids[name], 20, 1))  # warm
                    cpu = server.cpu_seconds()
                    lat = asyncio.run(hammer(server.url, ids[name], args.requests, clients))
                    cpu = server.cpu_seconds() - cpu
                    figures[name][mode].append({"cpu_ms_per_request": cpu * 1000 / len(lat), "p50_ms": ms(pct(lat, 0.5))})
        load_after = machine_load()
    report = {"requests_per_round": args.requests, "rounds": args.rounds, "load_before": load_before, "load_after": load_after, "servers": {}}
    for name, modes in figures.items():
        report["servers"][name] = {
            mode: {
                "cpu_ms_per_request_median": round(statistics.median(r["cpu_ms_per_request"] for r in rounds), 2),
                "p50_ms_median": round(statistics.median(r["p50_ms"] for r in rounds), 2),
                "rounds": rounds,
            }
            for mode, rounds in modes.items()
        }
        for mode, f in report["servers"][name].items():
            print(f"{name:30} {mode:10} CPU {f['cpu_ms_per_request_median']:6.2f} ms/request, p50 {f['p50_ms_median']:6.2f} ms")
    out = HERE / "results" / "request_cost.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
