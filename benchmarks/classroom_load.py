#!/usr/bin/env python
"""A class of students against the production setup (issue 6).

    .venv/bin/python benchmarks/classroom_load.py                 # 60 students, 2 minutes
    .venv/bin/python benchmarks/classroom_load.py --students 10 --seconds 20   # a quick look

Starts daphne + two ``runworker model-worker`` processes on Redis with a
throwaway PostgreSQL database (the machine's PostgreSQL and Redis, as the
production tests use them), signs in N students and lets each one, for the
given time, do what a student in a lesson does: wheel steps (look at the
wheel, think, spin / pick / draw from Other, sometimes undo) and playground
streams (start, watch the tokens arrive, save the run).

Reports throughput, p50 / p95 / p99 latency per operation and every error,
then checks the database: every append the API acknowledged is there (in
order, undone ones marked), and every token streamed in a saved run is in
that run. Prints a table and writes benchmarks/results/classroom_load.json.
Not part of the test suite. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from tests.production.stack import (  # noqa: E402
    DEFAULT_PG,
    DEFAULT_REDIS,
    PYTHON,
    base_env,
    cleanup_prefix,
    create_database,
    drop_database,
    pg_problem,
    redis_problem,
    start_stack,
)
from tests.production.wsclient import WebSocket  # noqa: E402

LESSON_PROMPTS = [
    "The cat sat on the",
    "Once upon a time, in a small village,",
    "The capital of France is",
    "To make a cup of tea, first",
    "My favourite animal is the",
    "In the year 2050, schools will",
]
CSRF = "c" * 32
# The playground's speed slider: most students leave the default (500 ms), some go fast.
STREAM_SPEEDS_MS = [100, 250, 500, 500]


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency = defaultdict(list)  # operation -> seconds
        self.errors = []  # (operation, detail)
        self.requests = 0
        self.streamed_tokens = 0
        self.acked = []  # (session_id, token_id) in the order the API acknowledged them
        self.expected_active = {}  # session_id -> [token_id, ...] after undos
        self.undone = defaultdict(int)  # session_id -> undos acknowledged
        self.saved_runs = {}  # run_id -> [token_id, ...] streamed

    def time(self, operation, seconds, ok=True, detail=""):
        with self.lock:
            self.requests += 1
            self.latency[operation].append(seconds)
            if not ok:
                self.errors.append((operation, detail[:300]))

    def error(self, operation, detail):
        with self.lock:
            self.errors.append((operation, str(detail)[:300]))


class Student(threading.Thread):
    def __init__(self, index, base_url, ws_url, cookie, recorder, until, seed):
        super().__init__(daemon=True, name=f"student-{index}")
        self.index = index
        self.base_url = base_url
        self.ws_url = ws_url
        self.cookies = {"sessionid": cookie, "csrftoken": CSRF}
        self.rec = recorder
        self.until = until
        self.rng = random.Random(seed)
        self.session_id = None
        self.active = []

    # ---- helpers

    def call(self, http, operation, method, url, **kwargs):
        started = time.perf_counter()
        try:
            response = http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.rec.time(operation, time.perf_counter() - started, ok=False, detail=f"{type(exc).__name__}: {exc}")
            return None
        ok = response.status_code < 400
        self.rec.time(operation, time.perf_counter() - started, ok=ok, detail=f"{response.status_code} {response.text[:200]}")
        return response if ok else None

    def think(self, lo, hi):
        time.sleep(min(self.rng.uniform(lo, hi), max(0.0, self.until - time.monotonic())))

    # ---- a student's lesson

    def run(self):
        time.sleep(self.rng.uniform(0, 5))  # the class arrives over a few seconds
        with httpx.Client(base_url=self.base_url, cookies=self.cookies, headers={"X-CSRFToken": CSRF}, timeout=60) as http:
            while time.monotonic() < self.until:
                try:
                    if self.rng.random() < 0.65:
                        self.wheel_step(http)
                    else:
                        self.stream(self.rng.choice(LESSON_PROMPTS))
                except Exception as exc:  # noqa: BLE001 - count it, keep the student going
                    self.rec.error("student", f"{type(exc).__name__}: {exc}")
                    time.sleep(1)

    def new_session(self, http):
        created = self.call(http, "create session", "POST", "/api/sessions", json={})
        if created is None:
            return
        session_id = created.json()["session_id"]
        prompt = self.rng.choice(LESSON_PROMPTS)
        if self.call(http, "set-prompt", "POST", f"/api/sessions/{session_id}/set-prompt", json={"prompt": prompt}):
            self.session_id, self.active = session_id, []
            with self.rec.lock:
                self.rec.expected_active[session_id] = self.active

    def wheel_step(self, http):
        if self.session_id is None or len(self.active) >= 25:
            self.new_session(http)
            if self.session_id is None:
                return
        sid = self.session_id
        shown = self.call(http, "next-token-probs", "GET", f"/api/sessions/{sid}/next-token-probs", params={"threshold": 0.02})
        if shown is None:
            return
        self.think(0.5, 2.0)  # look at the wheel, decide
        roll = self.rng.random()
        if roll < 0.5:
            body = {"category": "sample"}
        elif roll < 0.8 and shown.json()["above_threshold_tokens"]:
            body = {"token_id": self.rng.choice(shown.json()["above_threshold_tokens"])["token_id"]}
        else:
            body = {"category": "other"}
        appended = self.call(http, "append-token", "POST", f"/api/sessions/{sid}/append-token", json=body)
        if appended is not None:
            token_id = appended.json()["appended_token"]["token_id"]
            with self.rec.lock:
                self.rec.acked.append((sid, token_id))
            self.active.append(token_id)
        if self.active and self.rng.random() < 0.1:
            self.think(0.2, 0.6)
            if self.call(http, "undo", "POST", f"/api/sessions/{sid}/undo") is not None:
                self.active.pop()
                with self.rec.lock:
                    self.rec.undone[sid] += 1
        self.think(0.5, 1.5)

    def stream(self, prompt):
        started = time.perf_counter()
        try:
            ws = WebSocket(self.ws_url + "/ws/playground/", cookies=self.cookies, timeout=30)
        except Exception as exc:  # noqa: BLE001
            self.rec.time("stream connect", time.perf_counter() - started, ok=False, detail=repr(exc))
            return
        tokens = []
        with ws:
            self.rec.time("stream connect", time.perf_counter() - started)
            max_tokens = self.rng.randint(10, 20)
            speed_ms = self.rng.choice(STREAM_SPEEDS_MS)
            ws.send_json({"type": "start", "text": prompt, "max_tokens": max_tokens, "speed_ms": speed_ms, "seed": self.rng.randrange(10**6)})
            sent = last = time.perf_counter()
            while True:
                message = ws.recv_json(timeout=60)
                now = time.perf_counter()
                if message["type"] == "token":
                    if tokens:
                        # How much later than the chosen speed the token came.
                        self.rec.time("stream token lateness", max(0.0, now - last - speed_ms / 1000))
                    else:
                        self.rec.time("stream first token", now - sent)
                    tokens.append(message["token_id"])
                    last = now
                elif message["type"] == "error":
                    self.rec.error("stream", message)
                    return
                elif message["type"] == "done":
                    break
            with self.rec.lock:
                self.rec.streamed_tokens += len(tokens)
            save_started = time.perf_counter()
            ws.send_json({"type": "save", "title": f"load test {self.index}"})
            while True:
                message = ws.recv_json(timeout=30)
                if message["type"] == "saved":
                    self.rec.time("save run", time.perf_counter() - save_started)
                    with self.rec.lock:
                        self.rec.saved_runs[message["run_id"]] = tokens
                    break
                if message["type"] == "error":
                    self.rec.time("save run", time.perf_counter() - save_started, ok=False, detail=str(message))
                    break
        self.think(1.0, 3.0)  # read what came out


# --------------------------------------------------------------------------- setup and checks


def sign_in_students(env, n) -> list[str]:
    script = (
        "import json\n"
        "from django.contrib.auth import get_user_model, SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY\n"
        "from django.contrib.sessions.backends.db import SessionStore\n"
        "keys = []\n"
        f"for i in range({n}):\n"
        "    u = get_user_model().objects.create_user(f'student{i}', password='load-test-password')\n"
        "    s = SessionStore()\n"
        "    s[SESSION_KEY] = str(u.pk)\n"
        "    s[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
        "    s[HASH_SESSION_KEY] = u.get_session_auth_hash()\n"
        "    s.create()\n"
        "    keys.append(s.session_key)\n"
        "print(json.dumps(keys))\n"
    )
    done = subprocess.run([PYTHON, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def cpu_seconds(pid) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def engine_stats(env) -> dict:
    """The engine's own numbers (batch sizes, cache hits) from whichever worker answers."""
    script = "import json; from modelworker import client; print(json.dumps(client.stats()))"
    done = subprocess.run([PYTHON, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": done.stderr[-500:]}


def check_database(database_url, rec: Recorder) -> dict:
    sessions = list(rec.expected_active)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "select session_id::text, position, token_id, undone_at is null from wheel_tokenevent "
            "where session_id::text = any(%s) order by session_id, position, id",
            (sessions,),
        ).fetchall()
        runs = dict(
            conn.execute(
                "select id::text, tokens from playground_playgroundrun where id::text = any(%s)", (list(rec.saved_runs),)
            ).fetchall()
        )
    active = defaultdict(list)
    all_rows = defaultdict(list)
    for session_id, _position, token_id, is_active in rows:
        all_rows[session_id].append(token_id)
        if is_active:
            active[session_id].append(token_id)
    acked_per_session = defaultdict(list)
    for session_id, token_id in rec.acked:
        acked_per_session[session_id].append(token_id)
    missing_appends = sum(max(0, len(acked) - len(all_rows[s])) for s, acked in acked_per_session.items())
    wrong_history = [s for s, expected in rec.expected_active.items() if active[s] != expected]
    missing_runs = [r for r in rec.saved_runs if r not in runs]
    wrong_runs = [r for r, ids in rec.saved_runs.items() if r in runs and [t["token_id"] for t in runs[r]] != ids]
    return {
        "appends_acknowledged": len(rec.acked),
        "append_rows_found": sum(len(v) for v in all_rows.values()),
        "appends_missing": missing_appends,
        "sessions_checked": len(sessions),
        "sessions_with_wrong_history": len(wrong_history),
        "runs_saved": len(rec.saved_runs),
        "streamed_tokens_in_saved_runs": sum(len(v) for v in rec.saved_runs.values()),
        "runs_missing": len(missing_runs),
        "runs_with_wrong_tokens": len(wrong_runs),
    }


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else None


def summarize(rec: Recorder, seconds: float) -> dict:
    ops = {}
    for operation, values in sorted(rec.latency.items()):
        ops[operation] = {
            "count": len(values),
            "p50_ms": round(percentile(values, 0.50) * 1000, 1),
            "p95_ms": round(percentile(values, 0.95) * 1000, 1),
            "p99_ms": round(percentile(values, 0.99) * 1000, 1),
            "mean_ms": round(statistics.fmean(values) * 1000, 1),
        }
    api = [v for op, vals in rec.latency.items() if not op.startswith("stream") for v in vals]
    wheel_steps = len(rec.latency.get("append-token", []))
    return {
        "operations": ops,
        "requests": rec.requests,
        "requests_per_second": round(rec.requests / seconds, 1),
        "wheel_steps_per_second": round(wheel_steps / seconds, 2),
        "streamed_tokens_per_second": round(rec.streamed_tokens / seconds, 1),
        "api_p50_ms": round(percentile(api, 0.5) * 1000, 1) if api else None,
        "api_p95_ms": round(percentile(api, 0.95) * 1000, 1) if api else None,
        "api_p99_ms": round(percentile(api, 0.99) * 1000, 1) if api else None,
        "errors": len(rec.errors),
        "error_samples": rec.errors[:20],
    }


def print_table(result):
    s = result["summary"]
    print()
    print(f"{'operation':24s} {'count':>7s} {'p50 ms':>9s} {'p95 ms':>9s} {'p99 ms':>9s}")
    for operation, o in s["operations"].items():
        print(f"{operation:24s} {o['count']:7d} {o['p50_ms']:9.1f} {o['p95_ms']:9.1f} {o['p99_ms']:9.1f}")
    print()
    print(f"students {result['students']}, {result['seconds']} s, {result['workers']} model workers")
    print(f"throughput: {s['requests_per_second']} requests/s, {s['wheel_steps_per_second']} wheel steps/s, "
          f"{s['streamed_tokens_per_second']} streamed tokens/s")
    print(f"API latency (HTTP, all operations): p50 {s['api_p50_ms']} ms, p95 {s['api_p95_ms']} ms, p99 {s['api_p99_ms']} ms")
    print(f"errors: {s['errors']}")
    for sample in s["error_samples"][:5]:
        print("   ", sample)
    d = result["database"]
    print(f"database: {d['appends_acknowledged']} appends acknowledged, {d['appends_missing']} missing, "
          f"{d['sessions_with_wrong_history']} of {d['sessions_checked']} sessions with a wrong history; "
          f"{d['runs_saved']} runs saved ({d['streamed_tokens_in_saved_runs']} tokens), "
          f"{d['runs_missing']} missing, {d['runs_with_wrong_tokens']} with wrong tokens")
    print(f"machine: load average before {result['load_before']}, after {result['load_after']} on {os.cpu_count()} CPUs")
    print("CPU seconds used: " + ", ".join(f"{k} {v}" for k, v in result["cpu_seconds"].items()))
    for model, m in (result["engine_stats_of_one_worker"].get("models") or {}).items():
        print(f"one worker's engine ({model}): {m.get('forward_passes')} forward passes, "
              f"{m.get('mean_batch_rows') or 0:.1f} rows per pass, logits cache hit rate {m.get('logits_cache_hit_rate') or 0:.2f}, "
              f"{m.get('kv_reused_tokens')} context tokens reused from KV caches")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--postgres", default=os.environ.get("DATABASE_TEST_URL", DEFAULT_PG))
    parser.add_argument("--redis", default=os.environ.get("REDIS_TEST_URL", DEFAULT_REDIS))
    parser.add_argument("--out", default=str(HERE / "results" / "classroom_load.json"))
    args = parser.parse_args()
    for problem in (pg_problem(args.postgres), redis_problem(args.redis)):
        if problem:
            sys.exit(problem)

    logdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"classroom-load-{uuid.uuid4().hex[:6]}"
    logdir.mkdir(parents=True)
    print(f"starting PostgreSQL database, daphne and {args.workers} model workers (logs in {logdir}) ...", flush=True)
    database = create_database(args.postgres, "tokenwheel_load")
    prefix = f"tw-load-{uuid.uuid4().hex[:6]}:"
    env = base_env(database, args.redis, prefix)
    stack = None
    try:
        stack = start_stack(env, logdir, "load", workers=args.workers)
        cookies = sign_in_students(env, args.students)
        rec = Recorder()
        load_before = [round(x, 2) for x in os.getloadavg()]
        print(f"{args.students} students for {args.seconds:g} s ...", flush=True)
        cpu_before = {"daphne": cpu_seconds(stack.daphne.pid)}
        for i, worker in enumerate(stack.workers):
            cpu_before[f"worker {i + 1}"] = cpu_seconds(worker.pid)
        own = os.times()
        cpu_before["load generator"] = own.user + own.system
        started = time.monotonic()
        until = started + args.seconds
        students = [
            Student(i, stack.base_url, stack.ws_url, cookies[i], rec, until, seed=1000 + i) for i in range(args.students)
        ]
        for s in students:
            s.start()
        for s in students:
            s.join(args.seconds + 120)
        elapsed = time.monotonic() - started
        load_after = [round(x, 2) for x in os.getloadavg()]
        cpu = {"daphne": cpu_seconds(stack.daphne.pid) - cpu_before["daphne"]}
        for i, worker in enumerate(stack.workers):
            cpu[f"worker {i + 1}"] = cpu_seconds(worker.pid) - cpu_before[f"worker {i + 1}"]
        own = os.times()
        cpu["load generator"] = own.user + own.system - cpu_before["load generator"]
        engine = engine_stats(env)
        result = {
            "students": args.students,
            "seconds": args.seconds,
            "workers": args.workers,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "load_before": load_before,
            "load_after": load_after,
            "summary": summarize(rec, elapsed),
            "cpu_seconds": {k: round(v, 1) for k, v in cpu.items()},
            "engine_stats_of_one_worker": engine,
            "database": check_database(database, rec),
        }
    finally:
        if stack is not None:
            stack.stop()
        drop_database(args.postgres, database)
        cleanup_prefix(args.redis, prefix)
    print_table(result)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out}")
    d = result["database"]
    lost = d["appends_missing"] + d["sessions_with_wrong_history"] + d["runs_missing"] + d["runs_with_wrong_tokens"]
    sys.exit(1 if lost or result["summary"]["errors"] else 0)


if __name__ == "__main__":
    main()
