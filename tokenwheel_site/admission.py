"""Load shedding in the web process: an API request that would wait too long
is answered at once with 503 ``busy`` and a ``Retry-After``.

A web process serves its requests on threads that share one interpreter
lock. Past what that lock can serve (about 150 students on the 2-core VM),
requests queue for it, and every student's step grows with the class: at
240 students a step took up to 6 s, and it would only grow with more. The
model's own queue refuses work it cannot start within its bound, but a
request waiting for the web process's lock never reaches it.

The wait is estimated with Little's law: the time a request now spends in the
process is about the requests in it divided by the rate they leave. While
that estimate passes ``WEB_MAX_WAIT_SECONDS``, a new ``/api/`` request is
refused from the event loop, without a thread, the database or the model, so
the students already in line get through and the refused ones try again
after ``Retry-After`` (the wheel page says "busy, retrying"). Pages and static
files are never refused. Fewer than ``WEB_SHED_MIN_IN_FLIGHT`` requests in
the process are never a queue: a few slow ones (an export) refuse nobody.

Everything here runs on the event loop's one thread: no locks.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque

from common.errors import AppError

log = logging.getLogger("tokenwheel.admission")

# Completions counted over this many seconds for the rate they leave at.
WINDOW_SECONDS = 2.0
# At most one warning in the log per this many seconds while shedding.
LOG_EVERY_SECONDS = 10.0
RETRY_AFTER_MAX = 10


class Admission:
    def __init__(self, max_wait: float, min_in_flight: int, clock=time.monotonic):
        self.max_wait = max(0.0, float(max_wait))
        self.min_in_flight = max(1, int(min_in_flight))
        self.clock = clock
        self.in_flight = 0
        self._done = deque()  # completion times within the window
        self._logged = -math.inf
        self.refused = 0

    def _forget_before(self, now: float):
        done = self._done
        while done and done[0] < now - WINDOW_SECONDS:
            done.popleft()

    def _rate(self, now: float) -> float:
        """Requests finished a second, over the last window (at least one per
        window, so a process where nothing finishes reads as very slow)."""
        self._forget_before(now)
        return max(len(self._done), 1) / WINDOW_SECONDS

    def expected_wait(self, now: float | None = None) -> float:
        """Seconds a request arriving now would spend in the process (Little's law)."""
        return self.in_flight / self._rate(self.clock() if now is None else now)

    def refusal(self, path: str) -> AppError | None:
        """The error to answer ``path`` with now, or None to serve it."""
        if not self.max_wait or self.in_flight < self.min_in_flight or not path.startswith("/api/"):
            return None
        now = self.clock()
        wait = self.expected_wait(now)
        if wait <= self.max_wait:
            return None
        self.refused += 1
        if now - self._logged >= LOG_EVERY_SECONDS:
            self._logged = now
            log.warning("busy: %d requests in the process, about %.1f s each; refusing API requests (%d so far)",
                        self.in_flight, wait, self.refused)
        retry = min(RETRY_AFTER_MAX, max(1, math.ceil(wait)))
        return AppError(
            "busy",
            f"The server is busy (a request would wait about {wait:.0f} s); try again in {retry} s.",
            503,
            retry_after=retry,
        )

    def started(self):
        self.in_flight += 1

    def finished(self):
        self.in_flight -= 1
        now = self.clock()
        self._done.append(now)
        self._forget_before(now)  # one window's worth, however long the process serves
