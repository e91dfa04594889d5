#!/usr/bin/env python
"""Class capacity (issue 12): a whole school on one machine, at a realistic pace.

    .venv/bin/python benchmarks/capacity.py                       # N = 30, 60, 120, 240 + playground
    .venv/bin/python benchmarks/capacity.py --students 30,60 --no-playground
    .venv/bin/python benchmarks/capacity.py --stack production    # daphnes + runworker, Redis, PostgreSQL

The wheel workload, exactly as the issue gives it: N students start over 5 s,
all anonymous from one address (127.0.0.1: a school behind one NAT), each
with a connection of its own. Each creates a session, sets the lesson prompt
"Today in class we learned", then loops for 30 s: GET ``next-token-probs``
with the defaults, POST ``append-token`` with a ``token_id`` drawn among the
above-threshold tokens (weighted by their probability, as the wheel's
segments are), thinks for a uniform 1.5-2.5 s; every 20 tokens it sets the
prompt again. A step is the probs request plus the append, timed at the
client. After a failed request a student waits its think time, or the
``Retry-After`` if that is longer (as the wheel page does), and tries again.

Per N: steps/s, p50 / p95 step latency, every non-2xx by status (and
transport errors), the latency of each request kind, the server's CPU
seconds per step, and the client's own event-loop lag (the client runs in
one process on the same 2 cores; its lag is part of what it measures).

The playground: 30 websocket streams at the default speed (500 ms a token):
p95 of the interval between consecutive tokens (target <= 1.5x the speed);
then tokens/s of 30 streams at speed 0 beside one stream.

Each N runs on a fresh server (embedded default: one daphne, the model in a
child process, SQLite, the site's own throttles). The machine's load is recorded
before and after each run. Writes benchmarks/results/capacity[-production].json.
Not part of the test suite; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import aiohttp  # noqa: E402

from _server import ProductionStack, Server, exclusive, machine_load, profile_summary, py_spy, wait_for_quiet, workdir  # noqa: E402
from _capacity_playground import playground_run  # noqa: E402
from _client_figures import LoopLag, latency  # noqa: E402
from run import ms, pct  # noqa: E402  (the wheel benchmark's percentiles)

LESSON_PROMPT = "Today in class we learned"
RESET_EVERY = 20
THINK_S = (1.5, 2.5)
RAMP_S = 5.0
REQUEST_TIMEOUT_S = 60.0


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


# --------------------------------------------------------------------------- the wheel workload


class Tally:
    def __init__(self):
        self.steps = []  # (started, seconds)
        self.requests = defaultdict(list)  # kind -> seconds (successful requests)
        self.errors = Counter()  # "kind status" -> count
        self.samples = {}  # "kind status" -> first body seen
        self.students_started = 0

    def fail(self, kind, status, body):
        key = f"{kind} {status}"
        self.errors[key] += 1
        self.samples.setdefault(key, body[:300])


class Reply:
    """What a student keeps of a response: its status, Retry-After and body."""

    def __init__(self, status_code: int, retry_after: str | None, body: bytes):
        self.status_code, self.retry_after, self.body = status_code, retry_after, body

    def json(self):
        return json.loads(self.body)


async def call(http, tally, kind, method, url, **kwargs):
    """One request; returns (ok, Reply or None). Every non-2xx is an error."""
    started = time.perf_counter()
    try:
        async with http.request(method, url, **kwargs) as response:
            reply = Reply(response.status, response.headers.get("Retry-After"), await response.read())
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        tally.fail(kind, type(exc).__name__, str(exc))
        return False, None
    if 200 <= reply.status_code < 300:
        tally.requests[kind].append(time.perf_counter() - started)
        return True, reply
    tally.fail(kind, reply.status_code, reply.body.decode(errors="replace"))
    return False, reply


def pause_after(response, rng) -> float:
    think = rng.uniform(*THINK_S)
    if response is not None and response.status_code >= 400:
        try:
            return max(think, float(response.retry_after or 0))
        except ValueError:
            return think
    return think


async def student(index, url, tally, delay, seconds, seed):
    rng = random.Random(seed)
    await asyncio.sleep(delay)
    # aiohttp, not httpx: the load generator shares the server's two cores, and
    # httpx took ~6 ms of CPU a step (a sixth of the machine at 120 students)
    # where aiohttp takes about a third of that (README, Class capacity).
    connector = aiohttp.TCPConnector(limit=1)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(base_url=url, connector=connector, timeout=timeout) as http:
        # Setup: create and set the prompt, retrying (bounded) like a student would.
        give_up = time.monotonic() + seconds
        session_id = None
        while time.monotonic() < give_up:
            if session_id is None:
                ok, response = await call(http, tally, "create", "POST", "/api/sessions", json={})
                if ok:
                    session_id = response.json()["session_id"]
            if session_id is not None:
                ok, response = await call(http, tally, "set-prompt", "POST", f"/api/sessions/{session_id}/set-prompt", json={"prompt": LESSON_PROMPT})
                if ok:
                    break
            await asyncio.sleep(pause_after(response, rng))
        else:
            return
        tally.students_started += 1
        end = time.monotonic() + seconds
        tokens = 0
        while time.monotonic() < end:
            started = time.perf_counter()
            ok, response = await call(http, tally, "probs", "GET", f"/api/sessions/{session_id}/next-token-probs")
            if ok:
                above = response.json()["above_threshold_tokens"]
                token = rng.choices(above, weights=[t["probability"] for t in above])[0]
                ok, response = await call(http, tally, "append", "POST", f"/api/sessions/{session_id}/append-token", json={"token_id": token["token_id"]})
                if ok:
                    tally.steps.append((started, time.perf_counter() - started))
                    tokens += 1
                    if tokens % RESET_EVERY == 0:
                        await call(http, tally, "set-prompt", "POST", f"/api/sessions/{session_id}/set-prompt", json={"prompt": LESSON_PROMPT})
            await asyncio.sleep(pause_after(response, rng))


def by_window(steps, width: float) -> list[dict]:
    """Steps/s and latency per ``width`` seconds from the first step: the
    warm-up (every student's first forward) beside the steady state."""
    if not steps:
        return []
    first = min(t for t, _ in steps)
    windows = defaultdict(list)
    for t, seconds in steps:
        windows[int((t - first) // width)].append(seconds)
    return [
        {"from_s": i * width, "steps_per_s": round(len(v) / width, 1), "p50_ms": ms(pct(v, 0.5)), "p95_ms": ms(pct(v, 0.95))}
        for i, v in sorted(windows.items())
    ]


async def wheel_run(urls, n, seconds, seed) -> dict:
    tally = Tally()
    with LoopLag() as lag:
        started = time.perf_counter()
        await asyncio.gather(
            *(student(i, urls[i % len(urls)], tally, RAMP_S * i / n, seconds, seed * 100_003 + i) for i in range(n))
        )
        wall = time.perf_counter() - started
    steps = [s for _, s in tally.steps]
    if tally.steps:
        first = min(t for t, _ in tally.steps)
        last = max(t + s for t, s in tally.steps)
        window = last - first
    else:
        window = wall
    return {
        "students": n,
        "students_started": tally.students_started,
        "steps": len(steps),
        "window_s": round(window, 1),
        "steps_per_s": round(len(steps) / window, 2) if window else 0.0,
        "step": latency(steps),
        "step_by_5s": by_window(tally.steps, 5.0),
        "requests": {kind: latency(v) for kind, v in sorted(tally.requests.items())},
        "errors": sum(tally.errors.values()),
        "errors_by_status": dict(sorted(tally.errors.items())),
        "error_samples": tally.samples,
        "client_loop_lag": lag.summary(),
    }


# --------------------------------------------------------------------------- servers and the run


def git_commit() -> str:
    if os.environ.get("BENCH_COMMIT"):  # a snapshot (git archive) of a commit has no .git
        return os.environ["BENCH_COMMIT"]
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def start_target(args, name, work, template):
    if args.stack == "production":
        return ProductionStack(work, daphnes=args.daphnes, workers=args.workers, name=name, **dict(args.server_env)).start()
    return Server(name, work, template_db=template, throttled=True, **dict(args.server_env)).start()


def urls_of(target) -> list[str]:
    return target.urls if isinstance(target, ProductionStack) else [target.url]


def measured(target, coroutine, profile_to=None, seconds=0.0, gil=False):
    """Run ``coroutine`` with the machine's load, the server's and the client's
    CPU time around it (and, given ``profile_to``, py-spy on the embedded server)."""
    before = {"uptime": uptime(), "load": machine_load()}
    spy = py_spy(target.proc.pid, seconds, profile_to, gil) if profile_to else None
    roles0 = target.cpu_by_role() if hasattr(target, "cpu_by_role") else None
    cpu0, own0 = target.cpu_seconds(), resource.getrusage(resource.RUSAGE_SELF)
    result = asyncio.run(coroutine)
    cpu1, own1 = target.cpu_seconds(), resource.getrusage(resource.RUSAGE_SELF)
    if roles0 is not None:  # the web processes' and the model process's (or workers') shares
        result["server_cpu_s_by_role"] = {k: round(v - roles0[k], 1) for k, v in target.cpu_by_role().items()}
    if spy is not None:
        spy.wait(timeout=seconds + 60)
        result["profile"] = {"file": str(profile_to), **profile_summary(profile_to)}
    result["server_cpu_s"] = round(cpu1 - cpu0, 1)
    result["client_cpu_s"] = round(own1.ru_utime + own1.ru_stime - own0.ru_utime - own0.ru_stime, 1)
    result["load_before"] = before
    result["load_after"] = {"uptime": uptime(), "load": machine_load()}
    return result


def print_wheel(r):
    errors = ", ".join(f"{k}: {v}" for k, v in r["errors_by_status"].items()) or "0"
    print(
        f"  N={r['students']:>3}: {r['steps_per_s']:6.1f} steps/s  step p50 {r['step']['p50_ms']} ms  "
        f"p95 {r['step']['p95_ms']} ms  errors {errors}  (server CPU {r['server_cpu_ms_per_step']} ms/step, "
        f"client CPU {r['client_cpu_s']} s, client loop lag p95 {r['client_loop_lag']['p95_ms']} ms)",
        flush=True,
    )
    roles = ", ".join(f"{k} {v} s" for k, v in r.get("server_cpu_s_by_role", {}).items())
    print(f"         server CPU by process: {roles}; before: {r['load_before']['uptime']}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", default="30,60,120,240", help="comma-separated class sizes N")
    parser.add_argument("--seconds", type=float, default=30.0, help="each student's loop (default 30)")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--stack", choices=["embedded", "production"], default="embedded")
    parser.add_argument("--daphnes", type=int, default=2, help="production: daphne processes")
    parser.add_argument("--workers", type=int, default=2, help="production: runworker model-worker processes")
    parser.add_argument("--profile", nargs="?", const="all", choices=["all", "gil"],
                        help="py-spy the embedded server during each run (collapsed stacks beside the JSON); gil: GIL holders only")
    parser.add_argument("--no-playground", action="store_true")
    parser.add_argument("--playground-only", action="store_true")
    parser.add_argument("--wait-quiet", type=float, default=300.0, help="wait up to this long for a quiet machine before each run")
    parser.add_argument("--server-env", action="append", default=[], type=lambda s: tuple(s.split("=", 1)), help="NAME=VALUE for the servers")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    sizes = [] if args.playground_only else [int(n) for n in args.students.split(",") if n]

    work = workdir()
    template = None
    if args.stack == "embedded":
        # Migrate once; each server starts from a copy.
        blank = Server("template", work, throttled=True)
        blank.migrate()
        template = blank.db_path

    out = Path(args.output) if args.output else HERE / "results" / ("capacity.json" if args.stack == "embedded" else "capacity-production.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "commit": git_commit(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "stack": args.stack if args.stack == "embedded" else f"production: {args.daphnes} daphne + {args.workers} runworker, Redis, PostgreSQL",
        "server_env": dict(args.server_env),
        "workload": {"prompt": LESSON_PROMPT, "loop_s": args.seconds, "ramp_s": RAMP_S, "think_s": THINK_S, "reset_every": RESET_EVERY},
        "wheel": [],
    }
    print(f"capacity at {report['commit']} ({report['stack']}); results -> {out}", flush=True)

    def save():
        out.write_text(json.dumps(report, indent=2) + "\n")

    with exclusive() as locked:  # never beside another benchmark that takes the lock
        report["had_benchmark_lock"] = locked
        run_all(args, sizes, work, template, report, save, out)
    print(f"written {out}", flush=True)


def run_all(args, sizes, work, template, report, save, out):
    for n in sizes:
        waited = wait_for_quiet(args.wait_quiet)
        target = start_target(args, f"wheel-{n}", work, template)
        try:
            profile = out.with_name(f"{out.stem}-profile-{n}.txt") if args.profile else None
            run = wheel_run(urls_of(target), n, args.seconds, args.seed)
            result = measured(target, run, profile, RAMP_S + args.seconds, args.profile == "gil")
        finally:
            target.stop()
        result["waited_for_quiet_s"] = waited
        result["server_cpu_ms_per_step"] = round(1000 * result["server_cpu_s"] / result["steps"], 1) if result["steps"] else None
        report["wheel"].append(result)
        print_wheel(result)
        save()

    if not args.no_playground and args.stack == "embedded":
        wait_for_quiet(args.wait_quiet)
        target = start_target(args, "playground", work, template)
        try:
            url = urls_of(target)[0]
            ws_url = url.replace("http://", "ws://") + "/ws/playground/"
            report["playground"] = measured(target, playground_run(ws_url, url))
        finally:
            target.stop()
        p = report["playground"]
        print(
            f"  playground: 30 streams at {p['paced']['speed_ms']} ms: interval p50 {p['paced']['interval']['p50_ms']} ms, "
            f"p95 {p['paced']['interval']['p95_ms']} ms ({p['paced']['p95_over_speed']}x, target 1.5x); speed 0: "
            f"1 stream {p['speed0']['one_stream']['tokens_per_s']} tok/s, 30 streams {p['speed0']['30_streams']['tokens_per_s']} tok/s",
            flush=True,
        )
        save()


if __name__ == "__main__":
    main()
