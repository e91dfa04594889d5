#!/usr/bin/env python
"""Wheel API benchmark (issue 2, part 4): one run on the default model.

    .venv/bin/python benchmarks/run.py            # the full run (a few minutes)
    .venv/bin/python benchmarks/run.py --quick    # a sanity check (about a minute)

(a) a bare transformers forward vs HTTP next-token-probs for the same
    context (cache miss, repeated request, one step in a 300-token session);
(b) 30 simulated students on one lesson prompt against a server with
    batching + caching and one without;
(c) the server's RSS after the model is loaded and warmed vs after 1,000
    sessions.

Servers are daphne subprocesses on free 127.0.0.1 ports, each with its own
SQLite file. Prints a table and writes benchmarks/results/wheel.json
(``--quick`` writes wheel-quick.json). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx

from _common import HERE, ROOT, LocalModel, torch_threads  # first: the path and settings the rest needs
from _server import Server, exclusive, format_load, machine_load, wait_for_quiet, workdir

# A paragraph a teacher might give (~60 tokens); request i replaces its first
# token, so every request of the cache-miss series is a context the server
# has never seen (no logits hit, no KV prefix to reuse).
CONTEXT_TAIL = (
    " water cycle describes how water moves around our planet. The sun heats the oceans and lakes, and some "
    "of the water evaporates into the air as vapour. High in the sky the vapour cools and condenses into tiny "
    "droplets that form clouds. When the droplets grow heavy enough, they fall back to the ground as"
)
LESSON_PROMPT = "Once upon a time, in a small village by the sea, there lived a"
LONG_TEXT = (
    "The water cycle describes how water moves around our planet. The sun heats the oceans and lakes, and some "
    "of the water evaporates into the air as vapour. Plants add more vapour through their leaves, a process "
    "called transpiration. High in the sky the vapour cools and condenses into tiny droplets that form clouds. "
    "When the droplets grow heavy enough, they fall back to the ground as rain, snow or hail. Some of that water "
    "soaks into the soil and becomes groundwater, which can stay underground for thousands of years. The rest "
    "runs over the surface into streams and rivers, and the rivers carry it back to the sea. Along the way, "
    "people collect it in reservoirs, clean it, and pipe it to homes and farms. Farmers use most of the fresh "
    "water in the world to grow food, and cities use a great deal more for drinking, cooking and cleaning. "
    "Because the total amount of water on Earth hardly changes, the same molecules have been travelling "
    "around this cycle for billions of years. The glass of water you drink today may once have fallen as snow "
    "on a mountain, floated in a cloud over the ocean, or been part of a river that flowed past an ancient city. "
    "Scientists study the water cycle to predict floods and droughts, to plan how much water a town will need, "
    "and to understand how a warmer climate changes the amount of rain that falls in each season. When the air "
    "is warmer it can hold more vapour, so storms can become heavier, while dry regions may lose more water to "
    "evaporation. Learning how each part of the cycle works helps us protect this precious resource for the "
    "future, and it explains why the weather"
)


# --------------------------------------------------------------------------- helpers


def pct(values, q):
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def ms(seconds):
    return None if seconds is None else round(seconds * 1000, 2)


def summary(values):
    return {
        "n": len(values),
        "p50_ms": ms(pct(values, 0.5)),
        "p95_ms": ms(pct(values, 0.95)),
        "min_ms": ms(min(values)) if values else None,
        "max_ms": ms(max(values)) if values else None,
    }


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return self.end - time.monotonic()

    def check(self, what):
        if self.left() <= 0:
            raise TimeoutError(f"time limit reached during {what}")


def expect(r: httpx.Response, status=200):
    if r.status_code != status:
        raise RuntimeError(f"{r.request.method} {r.request.url.path} -> {r.status_code}: {r.text[:300]}")
    return r.json()


def new_session(c: httpx.Client, prompt: str) -> tuple[str, int]:
    sid = expect(c.post("/api/sessions", json={}), 201)["session_id"]
    count = expect(c.post(f"/api/sessions/{sid}/set-prompt", json={"prompt": prompt}))["token_count"]
    return sid, count


# --------------------------------------------------------------------------- bare model


class Bare(LocalModel):
    """The default model's weights run as a plain ``model(ids, logits_to_keep=1)``
    on this process's main thread."""

    def decode(self, ids):
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def forward(self, ids) -> float:
        torch = self.torch
        x = torch.tensor([ids])
        started = time.perf_counter()
        with torch.inference_mode():
            self.model(x, logits_to_keep=1)
        return time.perf_counter() - started

    def variants(self, tail: str, count: int) -> list[tuple[str, list[int]]]:
        """``count`` texts ``word + tail`` that tokenize as ``[one token] + tail``
        (same length, differing only in the first token), chosen deterministically."""
        tail_ids = self.encode(tail)
        out, seen = [], set()
        vocab = self.tokenizer.convert_ids_to_tokens(list(range(1000, 30000)))
        for token in vocab:
            if not (token.isalpha() and token.isascii() and token[0].isupper() and 3 <= len(token) <= 8):
                continue
            text = token + tail
            ids = self.encode(text)
            if len(ids) == len(tail_ids) + 1 and ids[1:] == tail_ids and ids[0] not in seen:
                seen.add(ids[0])
                out.append((text, ids))
                if len(out) == count:
                    return out
        raise RuntimeError(f"found only {len(out)} variants of the context")

    def exact_prefix(self, text: str, n: int) -> tuple[str, list[int]]:
        """A prefix of ``text`` that is exactly ``n`` tokens and tokenizes back to itself."""
        ids = self.encode(text)
        if len(ids) < n:
            raise RuntimeError(f"the long text has only {len(ids)} tokens")
        for cut in range(n, len(ids)):
            prefix = self.decode(ids[:cut])
            again = self.encode(prefix)
            if len(again) == n:
                return prefix, again
        raise RuntimeError(f"no {n}-token prefix found")


# --------------------------------------------------------------------------- (a)


def part_a(server: Server, bare: Bare, cfg, deadline: Deadline) -> dict:
    n_miss, warm = cfg["miss"], cfg["warm"]
    contexts = bare.variants(CONTEXT_TAIL, n_miss + warm)
    result = {"context_tokens": len(contexts[0][1])}
    with httpx.Client(base_url=server.url, timeout=60.0) as c:
        # Sessions first (not timed): one per context.
        sessions = []
        for text, ids in contexts:
            deadline.check("(a) set-up")
            sid, count = new_session(c, text)
            if count != len(ids):
                raise RuntimeError(f"server tokenized the context as {count} tokens, the benchmark as {len(ids)}")
            sessions.append(sid)
        # Interleaved, so a burst of load from elsewhere hits both sides alike.
        bare_t, http_t = [], []
        for i, ((text, ids), sid) in enumerate(zip(contexts, sessions)):
            deadline.check("(a) cache miss")
            b = bare.forward(ids)
            started = time.perf_counter()
            expect(c.get(f"/api/sessions/{sid}/next-token-probs"))
            h = time.perf_counter() - started
            if i >= warm:
                bare_t.append(b)
                http_t.append(h)
        result["miss"] = {
            "bare_forward": summary(bare_t),
            "http_next_token_probs": summary(http_t),
            "ratio_p50": round(pct(http_t, 0.5) / pct(bare_t, 0.5), 3),
        }

        # Repeated request: the same session asks again (a logits-cache hit).
        sid = sessions[-1]
        rep = []
        for i in range(cfg["repeat"] + warm):
            deadline.check("(a) repeated")
            started = time.perf_counter()
            expect(c.get(f"/api/sessions/{sid}/next-token-probs"))
            if i >= warm:
                rep.append(time.perf_counter() - started)
        result["repeated"] = summary(rep)

        # A 300-token session: each step is next-token-probs + append (sample).
        long_text, long_ids = bare.exact_prefix(LONG_TEXT, cfg["long_tokens"])
        bare_long = []
        for i in range(cfg["long_bare"] + 1):
            deadline.check("(a) bare long forward")
            t = bare.forward(long_ids)
            if i >= 1:
                bare_long.append(t)
        sid, count = new_session(c, long_text)
        if count != len(long_ids):
            raise RuntimeError(f"long context: server {count} tokens, benchmark {len(long_ids)}")
        steps, ntp_t, app_t = [], [], []
        for i in range(cfg["long_steps"] + 1):  # the first step pays the prefill
            deadline.check("(a) long steps")
            t0 = time.perf_counter()
            expect(c.get(f"/api/sessions/{sid}/next-token-probs"))
            t1 = time.perf_counter()
            expect(c.post(f"/api/sessions/{sid}/append-token", json={"category": "sample", "seed": 1000 + i}))
            t2 = time.perf_counter()
            if i == 0:
                first_step = t2 - t0
                continue
            steps.append(t2 - t0)
            ntp_t.append(t1 - t0)
            app_t.append(t2 - t1)
        result["long_session"] = {
            "context_tokens": len(long_ids),
            "bare_forward": summary(bare_long),
            "first_step_ms (prefill)": ms(first_step),
            "step": summary(steps),
            "step_next_token_probs": summary(ntp_t),
            "step_append": summary(app_t),
            "ratio_p50": round(pct(steps, 0.5) / pct(bare_long, 0.5), 3),
        }
    return result


# --------------------------------------------------------------------------- (b)


def students(server: Server, n_students: int, n_steps: int, time_limit: float) -> dict:
    """``n_students`` threads: create -> set-prompt -> n_steps x (next-token-probs -> append sample)."""
    barrier = threading.Barrier(n_students + 1)
    deadline = Deadline(time_limit)
    records = [dict(session=None, acked=[], latencies=[], steps=[], errors=[]) for _ in range(n_students)]

    def run(i):
        rec = records[i]
        with httpx.Client(base_url=server.url, timeout=httpx.Timeout(60.0, connect=10.0)) as c:
            barrier.wait()

            def call(method, path, ok, **kw):
                if deadline.left() <= 0:
                    raise TimeoutError("time limit")
                started = time.perf_counter()
                r = c.request(method, path, **kw)
                rec["latencies"].append(time.perf_counter() - started)
                return expect(r, ok)

            try:
                sid = call("POST", "/api/sessions", 201, json={})["session_id"]
                rec["session"] = sid
                call("POST", f"/api/sessions/{sid}/set-prompt", 200, json={"prompt": LESSON_PROMPT})
                for step in range(n_steps):
                    started = time.perf_counter()
                    call("GET", f"/api/sessions/{sid}/next-token-probs", 200)
                    # A distinct, reproducible seed per student and step.
                    body = call(
                        "POST",
                        f"/api/sessions/{sid}/append-token",
                        200,
                        json={"category": "sample", "seed": 7919 * (i + 1) + step},
                    )
                    rec["acked"].append(body["appended_token"]["token_id"])
                    rec["steps"].append(time.perf_counter() - started)
            except Exception as exc:  # counted, reported, never hidden
                rec["errors"].append(f"{type(exc).__name__}: {exc}"[:300])

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n_students)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join(timeout=max(1.0, deadline.left() + 70))
    wall = time.perf_counter() - started
    hung = sum(t.is_alive() for t in threads)

    latencies = [x for r in records for x in r["latencies"]]
    step_times = [x for r in records for x in r["steps"]]
    done_steps = sum(len(r["acked"]) for r in records)
    errors = [e for r in records for e in r["errors"]] + ["thread still running"] * hung
    return {
        "students": n_students,
        "steps_per_student": n_steps,
        "completed_steps": done_steps,
        "requests": len(latencies),
        "wall_s": round(wall, 2),
        "steps_per_s": round(done_steps / wall, 2),
        "request_latency": summary(latencies),
        "step_latency": summary(step_times),
        "errors": len(errors),
        "error_samples": errors[:5],
        "durability": check_appends(server.db_path, records),
    }


def check_appends(db_path: Path, records) -> dict:
    """Read the server's SQLite file: every acknowledged append, in order."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        checked = missing = mismatched = 0
        for rec in records:
            if rec["session"] is None:
                continue
            rows = con.execute(
                "SELECT position, token_id FROM wheel_tokenevent WHERE session_id = ? AND undone_at IS NULL "
                "ORDER BY position",
                (uuid.UUID(rec["session"]).hex,),
            ).fetchall()
            positions = [p for p, _ in rows]
            stored = [t for _, t in rows]
            checked += len(rec["acked"])
            if positions != list(range(len(rows))) or stored[: len(rec["acked"])] != rec["acked"]:
                mismatched += 1
            missing += max(0, len(rec["acked"]) - len(stored))
        return {"acknowledged_appends": checked, "missing": missing, "sessions_out_of_order": mismatched}
    finally:
        con.close()


# --------------------------------------------------------------------------- (c)


def part_c(server: Server, n_sessions: int, workers: int, time_limit: float) -> dict:
    deadline = Deadline(time_limit)
    counter = iter(range(n_sessions))
    lock = threading.Lock()
    errors, done = [], [0]

    def run():
        with httpx.Client(base_url=server.url, timeout=60.0) as c:
            while deadline.left() > 0:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                try:
                    # A distinct prompt per session: no two share a cache entry.
                    sid, _ = new_session(c, f"Student {i} asked the teacher why the sky is blue, and the teacher said")
                    expect(c.get(f"/api/sessions/{sid}/next-token-probs"))
                    with lock:
                        done[0] += 1
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}"[:300])

    started = time.perf_counter()
    threads = [threading.Thread(target=run, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, deadline.left() + 70))
    return {
        "sessions": done[0],
        "workers": workers,
        "wall_s": round(time.perf_counter() - started, 2),
        "errors": len(errors),
        "error_samples": errors[:5],
    }


def cache_budget_mb(bare: Bare, server_env: dict) -> dict:
    """What the engine's bounded caches may hold at the servers' settings:
    the KV store's byte budget and the logits LRU's entries x vocabulary x 4 bytes."""
    from django.conf import settings

    kv = float(server_env.get("MODEL_KV_CACHE_MB", settings.MODELWORKER["KV_CACHE_MB"]))
    entries = int(server_env.get("MODEL_LOGITS_CACHE_ENTRIES", settings.MODELWORKER["LOGITS_CACHE_ENTRIES"]))
    logits = entries * int(bare.model.config.vocab_size) * 4 / 2**20
    return {"kv_store_mb": kv, "logits_lru_mb": round(logits, 1), "total_mb": round(kv + logits, 1)}


def settled_rss(server: Server, anon: dict | None = None, key: str = "") -> float:
    """RSS in MB once the server has been idle for 2 s (the engine returns
    freed heap to the OS when its batcher goes idle), so that every reading
    is taken in the same state. Also notes the anonymous part in ``anon``."""
    time.sleep(2.0)
    if anon is not None:
        value = server.anon_mb()
        anon[key] = round(value, 1) if value is not None else None
    return round(server.rss_mb(), 1)


def warm_up(server: Server, concurrent: int = 8):
    """Exercise every path once, alone and ``concurrent`` at a time (batched
    forwards, request threads), so the RSS baseline is a warmed server and
    not one that has only ever seen one request at a time. The warm-up
    sessions are deleted afterwards (their KV caches released)."""

    def one(k):
        with httpx.Client(base_url=server.url, timeout=60.0) as c:
            sid, _ = new_session(c, f"Warm-up {k}: the cat sat on the")
            expect(c.get(f"/api/sessions/{sid}/next-token-probs"))
            expect(c.post(f"/api/sessions/{sid}/append-token", json={"category": "sample", "seed": k}))
            expect(c.post(f"/api/sessions/{sid}/append-token", json={"category": "other", "seed": k}))
            expect(c.get(f"/api/sessions/{sid}"))
            expect(c.delete(f"/api/sessions/{sid}"))

    for k in range(3):
        one(k)
    threads = [threading.Thread(target=one, args=(100 + k,)) for k in range(concurrent)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)


# --------------------------------------------------------------------------- main

FULL = dict(
    warm=3, miss=25, repeat=40, long_tokens=300, long_bare=8, long_steps=15,
    students=30, steps=10, sessions=1000, session_workers=8,
)  # fmt: skip
QUICK = dict(
    warm=1, miss=4, repeat=5, long_tokens=300, long_bare=2, long_steps=3,
    students=5, steps=3, sessions=40, session_workers=4,
)  # fmt: skip

TARGETS = {
    "miss_ratio_p50": ("(a) HTTP / bare forward, cache miss, p50", "<=", 1.10),
    "repeated_p50_ms": ("(a) repeated request p50 (ms)", "<=", 10.0),
    "long_step_ratio_p50": ("(a) 300-token session step / bare forward, p50", "<=", 0.25),
    "throughput_speedup": ("(b) throughput batching+caching / off", ">=", 3.0),
    "errors": ("(b) errors (both servers)", "<=", 0),
    "missing_appends": ("(b) acknowledged appends missing or out of order", "<=", 0),
    "memory_growth_mb": ("(c) RSS growth after the sessions (MB)", "<=", 100.0),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small counts: checks that the benchmark runs")
    parser.add_argument("--out", help="JSON output (default benchmarks/results/wheel.json, or wheel-quick.json)")
    parser.add_argument(
        "--section-limit", type=float, default=300.0, help="time limit of each measured loop, in seconds (default 300)"
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for both servers, e.g. MODEL_KV_CACHE_MB=48 (recorded in the JSON)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=None,
        metavar="SECONDS",
        help="first wait up to this long for the CPUs to be less than 25%% busy (other work distorts every figure) "
        "(default 600, with --quick 0); before each timed section it waits again, up to 300 s",
    )
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    out = Path(args.out) if args.out else HERE / "results" / ("wheel-quick.json" if args.quick else "wheel.json")
    command = " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable, ROOT), "benchmarks/run.py", *sys.argv[1:]])

    print(f"Wheel API benchmark ({'quick' if args.quick else 'full'})")
    print(f"  command: {command}")
    with exclusive() as locked:
        if not locked:
            print("  (another benchmark kept the lock for too long: measuring anyway)")
        quiet_s = args.wait_quiet if args.wait_quiet is not None else (0 if args.quick else 600)
        waited = wait_for_quiet(quiet_s)
        report = measure(args, cfg, command, waited, quiet_s)
    print_table(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nJSON written to {os.path.relpath(out, ROOT)}")
    return 0 if all(t["met"] for t in report["targets"].values()) or args.quick else 1


def measure(args, cfg, command, waited, quiet_s) -> dict:
    server_env = dict(item.split("=", 1) for item in args.server_env)
    limit = args.section_limit
    load_start = machine_load()
    print(f"  machine at start: {format_load(load_start)}")

    import torch  # noqa: F401  (after _common set the environment)

    threads = torch_threads()
    bare = Bare(threads)
    print(f"  model {bare.model_id} ({bare.dtype}), torch threads {bare.threads} (bare) / TORCH_THREADS={threads} (servers)")

    wd = workdir()
    template = wd / "template.sqlite3"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={**os.environ, "SQLITE_PATH": str(template)},
        check=True,
        timeout=300,
    )
    common = {"TORCH_THREADS": threads, **server_env}
    report = {
        "command": command,
        "quick": args.quick,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "git_commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "waited_for_quiet_s": waited,
        "load_at_start": load_start,
        "model": bare.model_id,
        "dtype": bare.dtype,
        "torch_threads": threads,
        "config": cfg,
        "server_env": server_env,
        "cache_budget_mb": cache_budget_mb(bare, server_env),
    }

    fast = Server("batched", wd, template, MODEL_BATCHING=1, MODEL_CACHING=1, **common)
    slow = Server("unbatched", wd, template, MODEL_BATCHING=0, MODEL_CACHING=0, **common)
    try:
        print(f"\n[server] batching+caching on at {fast.url} ...", flush=True)
        fast.start()
        warm_up(fast)
        anon = {}
        rss = {"after_load_and_warm_up_mb": settled_rss(fast, anon, "after_load_and_warm_up_mb")}

        print("[a] bare forward vs HTTP next-token-probs ...", flush=True)
        report["waited_before_a_s"] = wait_for_quiet(min(quiet_s, 300))
        report["load_before_a"] = machine_load()
        report["a"] = part_a(fast, bare, cfg, Deadline(limit))
        rss["after_a_mb"] = settled_rss(fast, anon, "after_a_mb")

        print(f"[b] {cfg['students']} students x {cfg['steps']} steps, batching+caching on ...", flush=True)
        report["waited_before_b_s"] = wait_for_quiet(min(quiet_s, 300))
        report["load_before_b"] = machine_load()
        on = students(fast, cfg["students"], cfg["steps"], limit)
        rss["after_b_mb"] = settled_rss(fast, anon, "after_b_mb")

        print(f"[c] {cfg['sessions']} sessions (create, set-prompt, next-token-probs) ...", flush=True)
        report["load_before_c"] = machine_load()
        c = part_c(fast, cfg["sessions"], cfg["session_workers"], limit)
        rss["after_sessions_mb"] = settled_rss(fast, anon, "after_sessions_mb")
        c["rss"] = rss
        c["rss_anon"] = anon
        c["growth_mb"] = round(rss["after_sessions_mb"] - rss["after_load_and_warm_up_mb"], 1)
        c["cache_budget_mb"] = report["cache_budget_mb"]
        report["c"] = c
        fast.stop()

        print(f"[server] batching+caching off at {slow.url} ...", flush=True)
        slow.start()
        warm_up(slow)
        print(f"[b] {cfg['students']} students x {cfg['steps']} steps, batching+caching off ...", flush=True)
        report["waited_before_b_off_s"] = wait_for_quiet(min(quiet_s, 300))
        report["load_before_b_off"] = machine_load()
        off = students(slow, cfg["students"], cfg["steps"], limit)
        slow.stop()
        report["b"] = {
            "lesson_prompt": LESSON_PROMPT,
            "batching_caching_on": on,
            "batching_caching_off": off,
            "speedup": round(on["steps_per_s"] / off["steps_per_s"], 2) if off["steps_per_s"] else None,
        }
    finally:
        fast.stop()
        slow.stop()
    report["load_at_end"] = machine_load()
    shutil.rmtree(wd, ignore_errors=True)  # kept (server logs, SQLite files) only when a run fails

    a, b, c = report["a"], report["b"], report["c"]
    measured = {
        "miss_ratio_p50": a["miss"]["ratio_p50"],
        "repeated_p50_ms": a["repeated"]["p50_ms"],
        "long_step_ratio_p50": a["long_session"]["ratio_p50"],
        "throughput_speedup": b["speedup"],
        "errors": b["batching_caching_on"]["errors"] + b["batching_caching_off"]["errors"],
        "missing_appends": sum(
            b[k]["durability"]["missing"] + b[k]["durability"]["sessions_out_of_order"]
            for k in ("batching_caching_on", "batching_caching_off")
        ),
        "memory_growth_mb": c["growth_mb"],
    }
    report["targets"] = {}
    for key, (label, op, bound) in TARGETS.items():
        value = measured[key]
        ok = value is not None and (value <= bound if op == "<=" else value >= bound)
        report["targets"][key] = {"label": label, "value": value, "target": f"{op} {bound}", "met": ok}
    return report


def print_table(report):
    a, b, c = report["a"], report["b"], report["c"]
    on, off = b["batching_caching_on"], b["batching_caching_off"]
    long = a["long_session"]

    def throughput(r):
        return (
            f"{r['steps_per_s']} steps/s (p95 request {r['request_latency']['p95_ms']} ms, "
            f"step {r['step_latency']['p95_ms']} ms, {r['errors']} errors)"
        )

    rows = [
        (f"(a) bare forward, {a['context_tokens']} tokens, p50", f"{a['miss']['bare_forward']['p50_ms']} ms"),
        ("(a) HTTP next-token-probs, cache miss, p50", f"{a['miss']['http_next_token_probs']['p50_ms']} ms"),
        ("(a) HTTP next-token-probs, repeated, p50", f"{a['repeated']['p50_ms']} ms"),
        (f"(a) bare forward, {long['context_tokens']} tokens, p50", f"{long['bare_forward']['p50_ms']} ms"),
        (f"(a) {long['context_tokens']}-token session: next-token-probs + append, p50", f"{long['step']['p50_ms']} ms"),
        (f"(b) {on['students']} students, batching+caching on", throughput(on)),
        (f"(b) {off['students']} students, batching+caching off", throughput(off)),
        (
            "(b) acknowledged appends checked in SQLite",
            f"{on['durability']['acknowledged_appends']} + {off['durability']['acknowledged_appends']}",
        ),
        (
            "(c) RSS loaded+warm -> after %d sessions" % c["sessions"],
            f"{c['rss']['after_load_and_warm_up_mb']} -> {c['rss']['after_sessions_mb']} MB "
            f"(+{c['growth_mb']}; the caches' budget is {c['cache_budget_mb']['total_mb']} MB)",
        ),
    ]
    print("\nFigures")
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    print("\nTargets")
    width = max(len(t["label"]) for t in report["targets"].values())
    for t in report["targets"].values():
        print(f"  {t['label']:<{width}}  {str(t['value']):>8}  {t['target']:<8}  {'met' if t['met'] else 'MISSED'}")
    print(f"\n  machine at start: {format_load(report['load_at_start'])}")
    print(f"  machine at end:   {format_load(report['load_at_end'])}")


if __name__ == "__main__":
    sys.exit(main())
