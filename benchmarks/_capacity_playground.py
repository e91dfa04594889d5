"""The playground part of benchmarks/capacity.py: 30 websocket streams at the
default speed (the interval between tokens against the speed), then tokens/s
of 30 streams at speed 0 beside one stream."""

from __future__ import annotations

import asyncio
import time

from _client_figures import LoopLag, latency
from run import pct
from stream import WebSocket  # the benchmarks' small asyncio websocket client

STREAM_PROMPT = "Once upon a time, in a small village by the sea, there lived"


async def paced_stream(ws_url, origin, prompt, tokens, speed_ms, delay) -> dict:
    """A stream at ``speed_ms`` (None: the server's default): arrival times of its tokens."""
    await asyncio.sleep(delay)
    arrivals, error, hello, t0 = [], None, None, time.perf_counter()
    try:
        ws = await WebSocket.connect(ws_url, origin)
    except (OSError, RuntimeError) as exc:
        return {"t0": t0, "arrivals": arrivals, "error": f"connect: {exc}", "limits": {}}
    try:
        while True:
            msg = await ws.recv()
            if msg["type"] == "hello":
                hello = msg
            if msg["type"] == "models":
                break
        start = {"type": "start", "text": prompt, "max_tokens": tokens}
        if speed_ms is not None:
            start["speed_ms"] = speed_ms
        t0 = time.perf_counter()
        await ws.send(start)
        while True:
            msg = await ws.recv()
            if msg["type"] == "token":
                arrivals.append(time.perf_counter())
            elif msg["type"] == "done":
                break
            elif msg["type"] == "error":
                error = msg
                break
    except (OSError, ConnectionError, asyncio.IncompleteReadError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        try:
            await ws.close()
        except OSError:
            pass
    return {"t0": t0, "arrivals": arrivals, "error": error, "limits": (hello or {}).get("limits", {})}


async def playground_run(ws_url, origin, streams=30, tokens=40, fast_tokens=48) -> dict:
    with LoopLag() as lag:
        # 30 students press play within 3 s of each other, each on a text of their own.
        paced = await asyncio.gather(
            *(paced_stream(ws_url, origin, f"Student {i}: {STREAM_PROMPT}", tokens, None, 3.0 * i / streams) for i in range(streams))
        )
        speed = paced[0]["limits"].get("default_speed_ms", 500)
        intervals = [b - a for r in paced for a, b in zip(r["arrivals"], r["arrivals"][1:])]
        firsts = [r["arrivals"][0] - r["t0"] for r in paced if r["arrivals"]]

        async def fast(count, offset):
            t0 = time.perf_counter()
            runs = await asyncio.gather(
                *(paced_stream(ws_url, origin, f"Story {offset + i}. {STREAM_PROMPT}", fast_tokens, 0, 0) for i in range(count))
            )
            wall = time.perf_counter() - t0
            got = sum(len(r["arrivals"]) for r in runs)
            return {"streams": count, "tokens": got, "wall_s": round(wall, 2), "tokens_per_s": round(got / wall, 1),
                    "errors": [r["error"] for r in runs if r["error"]]}

        one = await fast(1, 1000)
        thirty = await fast(streams, 2000)
    p95 = pct(intervals, 0.95)
    return {
        "paced": {
            "streams": streams,
            "tokens_per_stream": tokens,
            "speed_ms": speed,
            "tokens": sum(len(r["arrivals"]) for r in paced),
            "interval": latency(intervals),
            "p95_over_speed": round(p95 * 1000 / speed, 2) if p95 else None,
            "target": "p95 interval <= 1.5x speed",
            "met": bool(p95 and p95 * 1000 <= 1.5 * speed),
            "first_token": latency(firsts),
            "errors": [r["error"] for r in paced if r["error"]],
        },
        "speed0": {"one_stream": one, f"{streams}_streams": thirty,
                   "ratio": round(thirty["tokens_per_s"] / one["tokens_per_s"], 2) if one["tokens_per_s"] else None},
        "client_loop_lag": lag.summary(),
    }
