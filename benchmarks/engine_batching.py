#!/usr/bin/env python
"""How well the engine's batches fill, measured in-process (no web stack).

    .venv/bin/python benchmarks/engine_batching.py              # both parts (~3 min)
    .venv/bin/python benchmarks/engine_batching.py --rows-only  # part 1
    .venv/bin/python benchmarks/engine_batching.py --load-only  # part 2

1. The cost of a one-token KV step at 1, 10, 20 and 40 rows (contexts of
   20 and 300 tokens) through the engine's padded forward.
2. Callers on threads that behave like students on the wheel: ask for the
   distribution after their session's tokens (a one-token KV step), append a
   token among the above-threshold ones (a logits-cache hit), think, and
   every 20 tokens start over from the lesson prompt. Reported: steps/s,
   p50/p95 of a step, rows per forward, 503s (busy), the cores the process
   used, past tokens reused per row and the KV store's size. ``--web-ms``
   adds pure-Python work to each request, standing in for the web stack.

The machine is shared: the load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tokenwheel_site.settings")
os.environ.setdefault("MODEL_PRELOAD", "false")

import django  # noqa: E402

django.setup()

from modelworker.engine import get_engine  # noqa: E402
from modelworker.errors import ModelError  # noqa: E402

MODEL = "smollm2-135m"
PROMPT = "Today in class we learned"


def load() -> str:
    return "load average %.1f %.1f %.1f" % os.getloadavg()


def rows_part(m, repeats: int):
    import torch

    from modelworker.engine.padded_forward import PaddedForward, Step

    forward = PaddedForward(m.model)
    words = "the a cat dog sat ran on under a mat tree while we all watched and laughed at it".split()
    print(f"\n1. one-token KV step: ms per forward (ms per row), median of {repeats}   [{load()}]")
    print("   wall clock, and the CPU time of the forward's thread (all of it with TORCH_THREADS=1;")
    print("   with more threads only the calling thread's share)")
    print(f"{'context':>8} {'rows':>5} {'wall':>16} {'cpu':>16}")
    for context in (20, 300):
        for n in (1, 10, 20, 40):
            steps = []
            with torch.inference_mode():
                for i in range(n):
                    rng = random.Random(i * 7919 + context)
                    text = " ".join(rng.choice(words) for _ in range(context * 2))
                    ids = m.encode(f"{i} {text}")[:context]
                    ((_, layers),) = forward([Step(ids, None, 0)])
                    steps.append(Step([ids[-1] if i % 2 else 13], layers, len(ids)))
                times, cpu = [], []
                for _ in range(repeats):
                    t, c = time.perf_counter(), time.thread_time()
                    forward(steps)
                    times.append(time.perf_counter() - t)
                    cpu.append(time.thread_time() - c)
            step, used = statistics.median(times) * 1000, statistics.median(cpu) * 1000
            print(f"{context:>8} {n:>5} {step:>8.1f} ({step / n:5.1f}) {used:>8.1f} ({used / n:5.1f})")


def web_work(ms: float):
    """Pure-Python work holding the GIL, standing in for the web stack's share of a request."""
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass


def load_part(engine, m, callers: int, seconds: float, think: tuple[float, float], web_ms: float):
    base = m.encode(PROMPT)
    latencies, busy, errors = [], [], []
    stop = time.monotonic() + seconds
    start_gate = threading.Barrier(callers)

    def student(i):
        rng = random.Random(i)
        key = f"bench-{callers}-{think[0]}-{i}"
        ids = list(base)
        start_gate.wait()
        time.sleep(rng.uniform(0, max(think[1], 0.2)))  # students do not start in lockstep
        while time.monotonic() < stop:
            t = time.perf_counter()
            try:
                web_work(web_ms)
                dist = engine.handle("distribution", {"model": MODEL, "ids": ids, "cache_key": key})
                pick = rng.choice(dist["above_threshold_tokens"])["token_id"]
                web_work(web_ms)
                engine.handle("choose", {"model": MODEL, "ids": ids, "mode": "token", "token_id": pick, "cache_key": key})
                latencies.append(time.perf_counter() - t)
                ids.append(pick)
                if len(ids) - len(base) >= 20:
                    ids = list(base)
            except ModelError as exc:
                (busy if exc.code == "busy" else errors).append(exc)
                time.sleep(float(exc.extra.get("retry_after", 1)))
            time.sleep(rng.uniform(*think))

    forwards, rows, reused = m.forward_count, m.batched_rows, m.kv.reused_tokens
    cpu = time.process_time()
    threads = [threading.Thread(target=student, args=(i,)) for i in range(callers)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    cpu = time.process_time() - cpu
    forwards, rows, reused = m.forward_count - forwards, m.batched_rows - rows, m.kv.reused_tokens - reused
    q = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else [0] * 19
    print(
        f"{callers:>7} {think[0]:.1f}-{think[1]:.1f} s {len(latencies) / elapsed:>8.1f} {q[9] * 1000:>7.0f} {q[18] * 1000:>7.0f}"
        f" {rows / max(forwards, 1):>9.1f} {len(busy):>5} {len(errors):>6} {cpu / elapsed:>6.2f}"
        f" {reused / max(rows, 1):>7.1f} {m.kv.nbytes / 2**20:>6.0f}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows-only", action="store_true")
    parser.add_argument("--load-only", action="store_true")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--callers", default="30:0,30:2,120:2,240:2", help="callers:think pairs (think 2 = 1.5-2.5 s)")
    parser.add_argument("--web-ms", type=float, default=0, help="pure-Python work per request, for the web stack")
    parser.add_argument("--switch-ms", type=float, default=None, help="sys.setswitchinterval, in ms")
    args = parser.parse_args()
    if args.switch_ms:
        sys.setswitchinterval(args.switch_ms / 1000)
    engine = get_engine()
    m = engine.get(MODEL)
    if not args.load_only:
        rows_part(m, args.repeats)
    if not args.rows_only:
        print(f"\n2. callers on threads (a step = distribution + append), web work {args.web_ms} ms a request   [{load()}]")
        print(
            f"{'callers':>7} {'think':>9} {'steps/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'rows/fwd':>9} {'busy':>5} {'errors':>6}"
            f" {'cores':>6} {'reused':>7} {'kv MB':>6}"
        )
        for pair in args.callers.split(","):
            callers, think = pair.split(":")
            think = (float(think) - 0.5, float(think) + 0.5) if float(think) else (0.0, 0.0)
            load_part(engine, m, int(callers), args.seconds, think, args.web_ms)
    print(f"\n[{load()}]")


if __name__ == "__main__":
    main()
