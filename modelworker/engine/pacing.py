"""When the batcher starts a forward, and whether a request may still queue.

Three rules, each measured on the 2-core machine:

* **Streams convoy** (``BATCH_LINGER_MS``): when a batch of N playground
  streams finishes, the first to come back would start a forward alone while
  the other N-1 queue behind it. Right after a forward that held stream
  steps, the batcher waits (until at most ``linger`` after that forward
  ended) for as many stream steps as it just served.
* **Busy, wait for company** (``BATCH_WAIT_MS``): when requests arrive faster
  than about one per forward, a forward started at once runs nearly alone
  and the next arrivals wait for it anyway. So the batcher waits for the
  rows expected within half the last forward's duration (at most
  ``BATCH_WAIT_MS``), as dynamic batchers in serving systems do: fewer,
  fuller forwards, and the cores free in between for the web stack. An idle
  model never waits: a lone request starts at once.
* **Work ahead waits for company** (``PREFETCH_WAIT_MS``): a batch of
  nothing but prefetches (the wheel's next step, computed while the student
  reads the last one) waits up to that long after its first was queued, so
  a class's prefetches share fewer, fuller forwards. Somebody asking for one
  of them ends the wait at once.
* **A bounded queue** (``MAX_QUEUE_WAIT_SECONDS``): while the oldest queued
  request has already waited that long, a new one would wait as long, so it
  is refused at once with ``busy`` (503) and a ``retry_after``, instead of
  every student waiting ten seconds.
"""

from __future__ import annotations

import math
import threading
import time

from ..errors import ModelError

# Weight of the newest gap between arrivals in the running estimate.
ARRIVAL_SMOOTHING = 0.2


class Pacing:
    def __init__(self, config: dict, batching: bool):
        self.linger = max(0, config.get("BATCH_LINGER_MS", 0)) / 1000 if batching else 0
        self.max_wait = max(0, config.get("BATCH_WAIT_MS", 0)) / 1000 if batching else 0
        self.ahead_wait = max(0, config.get("PREFETCH_WAIT_MS", 0)) / 1000 if batching else 0
        self.max_queue_wait = float(config.get("MAX_QUEUE_WAIT_SECONDS", 0) or 0)
        self._lock = threading.Lock()
        self._gap = math.inf  # running estimate of the seconds between two arrivals
        self._last_arrival = None
        self.last_forward = 0.0  # seconds the last forward took
        self.last_done = 0.0
        self.expect_back = 0  # stream steps the last forward served

    # ---- on request threads

    def arrived(self):
        now = time.monotonic()
        with self._lock:
            if self._last_arrival is not None:
                gap = now - self._last_arrival
                self._gap = gap if math.isinf(self._gap) else (1 - ARRIVAL_SMOOTHING) * self._gap + ARRIVAL_SMOOTHING * gap
            self._last_arrival = now

    def admit(self, oldest_queued_at: float | None, late_after: float | None = None):
        """Refuse a request while the queue's oldest has waited MAX_QUEUE_WAIT_SECONDS
        (or ``late_after`` seconds, for work that can be skipped)."""
        limit = self.max_queue_wait if late_after is None else late_after
        if not limit or oldest_queued_at is None:
            return
        waited = time.monotonic() - oldest_queued_at
        if waited >= limit:
            retry = max(1, math.ceil(waited))
            raise ModelError(
                "busy",
                f"The model is busy (requests are waiting {waited:.1f} s); try again in {retry} s.",
                503,
                retry_after=retry,
            )

    # ---- on the batcher's thread

    def arrival_rate(self) -> float:
        """Requests a second, lately (a long silence counts as one long gap)."""
        with self._lock:
            if self._last_arrival is None:
                return 0.0
            gap = max(self._gap, time.monotonic() - self._last_arrival)
        return 1 / gap if gap > 0 else math.inf

    def plan(self, rows: int, max_rows: int) -> tuple[int, float]:
        """``(rows wanted, deadline)`` for a batch that has ``rows`` now: wait
        for the rows expected in half a forward, when busy; else no wait."""
        if not self.max_wait or not self.last_forward:
            return rows, 0.0
        wait = min(self.max_wait, self.last_forward / 2)
        expected = self.arrival_rate() * wait
        if expected < 1:  # not busy: nobody is likely to join
            return rows, 0.0
        return min(max_rows, rows + int(expected)), time.monotonic() + wait

    def forward_done(self, seconds: float, stream_steps: int):
        self.last_forward = seconds
        self.expect_back = stream_steps
        self.last_done = time.monotonic()
