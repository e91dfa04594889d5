"""The batcher: every request for a model's next-token distribution goes through it.

It answers a repeated token sequence from the logits cache, extends a cached
KV prefix instead of re-reading the whole context, and runs the requests that
arrived meanwhile as one forward over all their rows, then their probability
maths (:mod:`.batch_maths`). A sequence can be asked for ahead of time
(:meth:`Batcher.prefetch`: the wheel's next step, computed while the student
reads the last one); a request for it then waits for that forward, or finds
its logits ready, instead of queueing a second row. Which forward is a parameter
(``forward(steps) -> [(logits, layers), ...]``, see :mod:`.padded_forward`),
so tests can drive the batcher with a fake one. When it starts a forward and
whether a request may still queue is :mod:`.pacing`'s call.

Its own thread collects jobs; the forwards and the maths run on the
process's one forward thread (see :func:`.tuning.forward_thread`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from ..errors import ModelError
from . import batch_maths, tuning
from .caches import KVEntry, KVStore, LogitsCache
from .pacing import Pacing
from .padded_forward import Step

log = logging.getLogger("modelworker")

_STOP = object()
_WAKE = object()  # someone now waits for a prefetch the batcher is holding back


@dataclass
class Job:
    ids: tuple
    cache_key: str | None
    question: batch_maths.Question | None = None  # None: the caller wants the logits
    # A step of a stream (playground, continue): its caller comes straight
    # back with the next step once it has this one's answer.
    follow_up: bool = False
    ahead: bool = False  # a prefetch: nobody waits for it yet
    wanted: bool = False  # a prefetch somebody now waits for
    queued_at: float = 0.0
    future: Future = field(default_factory=Future)


class Batcher:
    # Freed memory goes back to the OS once the batcher has been idle this long
    # (or at most this often under steady load): a few ms of malloc_trim.
    TRIM_IDLE_SECONDS = 0.5
    TRIM_EVERY_SECONDS = 5.0

    def __init__(self, forward, config: dict, name: str = "model", trim=None):
        self.forward = forward
        batching = config["BATCHING"]
        self.caching = config["CACHING"]
        self.max_batch = max(1, config["MAX_BATCH"]) if batching else 1
        self.torch_threads = max(1, int(config["TORCH_THREADS"]))
        self.pacing = Pacing(config, batching)
        self.logits_cache = LogitsCache(config["LOGITS_CACHE_ENTRIES"] if self.caching else 0)
        # Prefetched logits until their request comes (taken out then): apart
        # from the LRU above, which a class's other requests would flush first.
        self.ahead = LogitsCache(config.get("PREFETCH_ENTRIES", 0) if self.caching else 0)
        self._inflight: dict[tuple, Job] = {}  # prefetches queued or running, by sequence
        self.prefetches = 0
        self.prefetch_hits = 0
        self.kv = KVStore(config["KV_CACHE_MB"] * 1024 * 1024 if self.caching else 0)
        self._trim = tuning.heap_trimmer() if trim is None else trim
        self.forward_count = 0
        self.batched_rows = 0
        self._queue: queue.Queue = queue.Queue()
        self._stopped = False
        self._stop_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    # ---- on request threads

    def ask(self, ids, cache_key=None, question=None, timeout: float | None = None, follow_up: bool = False):
        """The :class:`~.batch_maths.Answer` to ``question`` about the token
        after ``ids`` (or, without a question, the last position's logits).
        ``cache_key`` names the sequence's KV cache (a session, a stream) for
        its next step."""
        ids = tuple(int(i) for i in ids)
        if not ids:
            raise ModelError("empty_context", "There is no text to continue.", 400)
        if question is not None:
            question.check()
        cached = self._ready_logits(ids, timeout)
        if cached is not None:
            if cache_key and self.caching:
                self._remember_prefix(cache_key, ids)
            # A hit skips the queue; its maths runs here, on one torch thread.
            tuning.single_threaded_maths()
            return cached if question is None else _unwrap(batch_maths.answers(cached[None], [question])[0])
        self.pacing.admit(self._oldest_queued_at())
        job = Job(ids, cache_key, question, follow_up, queued_at=time.monotonic())
        with self._stop_lock:  # a job is queued only while the thread will still answer it
            if self._stopped:
                raise ModelError("model_unavailable", "The model was unloaded.", 503)
            self._queue.put(job)
        self.pacing.arrived()
        try:
            return _unwrap(job.future.result(timeout=timeout))
        except FutureTimeout:
            job.future.cancel()  # the batcher skips it if it has not started it
            raise ModelError("worker_timeout", "The model is busy; try again in a few seconds.", 503) from None

    def prefetch(self, ids, cache_key=None) -> bool:
        """Queue a forward for ``ids`` that nobody waits for yet; False when
        its logits are at hand or coming already, or when the queue is
        running late (no extra work for a busy model)."""
        ids = tuple(int(i) for i in ids)
        if not ids or not self.caching or self.ahead.max_entries <= 0:
            return False
        if self.logits_cache.peek(ids) is not None or self.ahead.peek(ids) is not None or ids in self._inflight:
            return False
        try:
            self.pacing.admit(self._oldest_queued_at(), late_after=0.5)
        except ModelError:
            return False
        job = Job(ids, cache_key, ahead=True, queued_at=time.monotonic())
        with self._stop_lock:
            if self._stopped or self._inflight.setdefault(ids, job) is not job:
                return False
            self._queue.put(job)
        self.pacing.arrived()
        self.prefetches += 1
        return True

    def _ready_logits(self, ids, timeout):
        """``ids``'s logits from the cache, from a prefetch that finished, or
        (waiting for it) from one in flight; None when they must be computed."""
        cached = self.ahead.pop(ids)
        if cached is None:
            cached = self.logits_cache.get(ids)
            if cached is not None:
                return cached
            coming = self._inflight.get(ids)
            if coming is None:
                return None
            if not coming.wanted:
                coming.wanted = True
                self._queue.put(_WAKE)  # a batch held back for company goes now
            try:
                cached = _unwrap(coming.future.result(timeout=timeout))
            except FutureTimeout:
                raise ModelError("worker_timeout", "The model is busy; try again in a few seconds.", 503) from None
            self.ahead.pop(ids)
        self.prefetch_hits += 1
        self.logits_cache.put(ids, cached)  # the request's follow-up (the append) reads it there
        return cached

    def logits(self, ids, cache_key: str | None = None, timeout: float | None = None, follow_up: bool = False):
        """The last position's logits after ``ids``."""
        return self.ask(ids, cache_key, None, timeout=timeout, follow_up=follow_up)

    def _oldest_queued_at(self) -> float | None:
        with self._queue.mutex:
            for job in self._queue.queue:
                if isinstance(job, Job) and not job.future.cancelled():
                    return job.queued_at
        return None

    def _remember_prefix(self, cache_key, ids):
        # A logits hit skips the forward; point this key at the shared KV so its
        # next one-token step still extends a cache instead of re-reading all.
        entry = self.kv.longest_prefix(cache_key, ids)
        if entry is not None and entry.ids == ids:
            self.kv.put(cache_key, entry)

    def release(self, cache_key: str) -> bool:
        return self.kv.release(cache_key)

    def close(self, timeout: float = 10.0):
        """Answer what is queued, then stop the thread; later requests fail with 503."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    # ---- the batcher's thread

    def _run(self):
        dirty, last_trim = False, time.monotonic()
        while True:
            try:
                first = self._queue.get(timeout=self.TRIM_IDLE_SECONDS if dirty and self._trim else None)
            except queue.Empty:
                first = None
            if self._trim and dirty and (first is None or time.monotonic() - last_trim > self.TRIM_EVERY_SECONDS):
                self._trim(0)
                dirty, last_trim = False, time.monotonic()
            if first is _STOP:
                return self._fail_queued()
            if first is None or first is _WAKE:
                continue
            dirty = True
            jobs = self._collect(first)
            stop = _STOP in jobs
            jobs = [job for job in jobs if isinstance(job, Job)]
            started = time.monotonic()
            try:
                running = tuning.forward_thread().submit(self._process, jobs)
            except RuntimeError:  # the interpreter is exiting: its executors take no more work
                for job in jobs:
                    self._queue.put(job)
                return self._fail_queued()
            try:
                running.result()
            except Exception as exc:  # never let the batcher thread die
                log.exception("forward pass failed")
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(ModelError("generation_failed", f"Generation failed: {exc}", 500))
            finally:
                for job in jobs:
                    self._forget(job)  # one that failed
            took = time.monotonic() - started
            self.pacing.forward_done(took, sum(job.follow_up for job in jobs))
            if log.isEnabledFor(logging.DEBUG):  # what benchmarks/capacity.py's batches were
                log.debug("batch: %d jobs (%d ahead), %d queued after, %.0f ms", len(jobs), sum(j.ahead for j in jobs),
                          self._queue.qsize(), 1000 * took)
            if stop:
                return self._fail_queued()

    def _forget(self, job):
        if job.ahead and self._inflight.get(job.ids) is job:
            self._inflight.pop(job.ids, None)

    def _fail_queued(self):
        with self._stop_lock:
            self._stopped = True
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(job, Job) and job.future.set_running_or_notify_cancel():
                job.future.set_exception(ModelError("model_unavailable", "The model was unloaded.", 503))

    def _collect(self, first: Job) -> list[Job]:
        """The jobs for the next forward: ``first``, whatever is queued, and
        those :mod:`.pacing` says are worth waiting for."""
        jobs = [first]
        pacing = self.pacing
        stream_deadline = pacing.last_done + pacing.linger
        busy_rows, busy_deadline = pacing.plan(1 + self._queue.qsize(), self.max_batch)
        # Prefetches nobody waits for yet may wait for company (a student is
        # still reading the last wheel); one that somebody asks for goes now.
        ahead_deadline = first.queued_at + pacing.ahead_wait
        while len(jobs) < self.max_batch and jobs[-1] is not _STOP:
            now = time.monotonic()
            streams_out = sum(job.follow_up for job in jobs) < pacing.expect_back and now < stream_deadline
            company = len(jobs) < busy_rows and now < busy_deadline
            only_ahead = now < ahead_deadline and all(job.ahead and not job.wanted for job in jobs)
            until = max(stream_deadline if streams_out else 0, busy_deadline if company else 0, ahead_deadline if only_ahead else 0)
            try:
                item = self._queue.get(timeout=until - now) if until > now else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _WAKE:  # a wake-up only makes the rules above look again
                jobs.append(item)
        return jobs

    # ---- on the forward thread

    def _process(self, jobs: list[Job]):
        import torch

        if torch.get_num_threads() != self.torch_threads:
            tuning.set_this_threads_torch_threads(self.torch_threads)
        # A caller that timed out has cancelled its job: no forward for it.
        jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        # Identical sequences (a class on the same lesson prompt) share one row.
        unique: dict[tuple, list[Job]] = {}
        answered = []  # (job, logits)
        for job in jobs:
            cached = self.logits_cache.get(job.ids) if self.caching else None
            if cached is not None:
                answered.append((job, cached))
            else:
                unique.setdefault(job.ids, []).append(job)
        rows = []
        for ids, same in unique.items():
            entry = self.kv.longest_prefix(same[0].cache_key, ids) if self.caching else None
            rows.append((ids, same, entry))
        groups = self._groups(rows)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("forward rows: %s (new tokens %s)", [len(g) for g in groups],
                      [sum(len(ids) - (len(e.ids) if e else 0) for ids, _, e in g) for g in groups])
        with torch.inference_mode():
            for group in groups:
                for (ids, same, _), logits in zip(group, self._run_group(group)):
                    answered.extend((job, logits) for job in same)
            asked = [(job, logits) for job, logits in answered if job.question is not None]
            if asked:
                results = batch_maths.answers([logits for _, logits in asked], [job.question for job, _ in asked])
                for (job, _), result in zip(asked, results):
                    job.future.set_result(result)
        for job, logits in answered:
            if job.ahead:
                # Kept, then out of the in-flight map, before anyone is told:
                # a waiter that then takes it from ``ahead`` must not find
                # the finished job still "coming" on its next ask.
                self.ahead.put(job.ids, logits)
                self._forget(job)
            if job.question is None:
                job.future.set_result(logits)

    @staticmethod
    def _groups(rows):
        """Rows that only add a few tokens batch well together; long prefills
        go alone unless they are of similar length (padding is wasted work)."""
        rows = sorted(rows, key=lambda r: len(r[0]) - (len(r[2].ids) if r[2] else 0))
        groups, current = [], []
        for row in rows:
            if current:
                new_lens = [len(r[0]) - (len(r[2].ids) if r[2] else 0) for r in current + [row]]
                if max(new_lens) * len(new_lens) > 1.5 * sum(new_lens) + 8:
                    groups.append(current)
                    current = []
            current.append(row)
        if current:
            groups.append(current)
        return groups

    def _run_group(self, group) -> list:
        """One forward for ``group``; each row's logits, its KV stored for its keys."""
        steps = []
        for ids, _, entry in group:
            past_len = len(entry.ids) if entry is not None else 0
            if past_len == len(ids):  # logits were evicted but the KV survived: redo the last token
                past_len -= 1
            steps.append(Step(list(ids[past_len:]), entry.prefix(past_len) if past_len else None, past_len))
            self.kv.reused_tokens += past_len
        self.forward_count += 1
        self.batched_rows += len(steps)
        out = []
        for (ids, same, _), (logits, layers) in zip(group, self.forward(steps)):
            if self.caching:
                if not all(job.ahead for job in same):  # a prefetch's wait in self.ahead
                    self.logits_cache.put(ids, logits)
                entry = KVEntry.of(ids, layers)
                if entry.nbytes > self.kv.max_bytes // 8:
                    # A big batch's tensors would crowd the store out for one row: copy it out.
                    entry = entry.compacted()
                for key in {job.cache_key for job in same if job.cache_key} or {f"seq:{hash(ids)}"}:
                    self.kv.put(key, entry)
            out.append(logits)
        return out


def _unwrap(result):
    """A job's result, or the exception its row's maths raised."""
    if isinstance(result, BaseException):
        raise result
    return result
