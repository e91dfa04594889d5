"""What the capacity benchmark's client reports besides its own timings: a
latency summary, and how late its event loop runs (a busy client inflates
every latency it measures)."""

from __future__ import annotations

import asyncio
import time

from run import ms, pct  # the wheel benchmark's percentiles


def latency(values) -> dict:
    return {"n": len(values), "p50_ms": ms(pct(values, 0.5)), "p95_ms": ms(pct(values, 0.95)), "max_ms": ms(max(values, default=None))}


class LoopLag:
    """How late the client's event loop wakes a 50 ms sleep: a busy client
    inflates every latency it measures by about this much."""

    def __init__(self):
        self.lags = []
        self.task = None

    async def _run(self):
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.05)
            self.lags.append(time.perf_counter() - t - 0.05)

    def __enter__(self):
        self.task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc):
        self.task.cancel()

    def summary(self) -> dict:
        return {"p50_ms": ms(pct(self.lags, 0.5)), "p95_ms": ms(pct(self.lags, 0.95)), "max_ms": ms(max(self.lags, default=None))}
