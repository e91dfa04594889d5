"""Process tuning for a process that runs models: threads, malloc arenas,
heap trimming, and which thread does what torch work.

Imported first by :mod:`modelworker.engine`, before anything imports torch:
OpenMP reads ``OMP_NUM_THREADS`` once, when torch loads it, so setting it
later does nothing.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("modelworker")

# Arenas glibc may create in this process (its default is 8 per core).
MALLOC_ARENAS = 2

# Spins an idle OpenMP thread makes before it sleeps (libgomp, the OpenMP of
# torch's Linux wheels). See tune_process.
OPENMP_SPIN_COUNT = 10_000


def configured_threads() -> int:
    """``MODELWORKER["TORCH_THREADS"]``, or the cores (at most 4) without Django settings."""
    try:
        from django.conf import settings

        return max(1, int(settings.MODELWORKER["TORCH_THREADS"]))
    except Exception:  # settings not configured: a script using the loader alone
        return max(1, min(4, os.cpu_count() or 1))


def tune_process() -> None:
    """Environment and allocator settings that only work before torch loads.
    An explicit value in the environment always wins."""
    threads = str(configured_threads())
    if "torch" in sys.modules:
        log.debug("torch was imported before the engine: OMP_NUM_THREADS is left to torch.set_num_threads")
    else:
        os.environ.setdefault("OMP_NUM_THREADS", threads)
        # How long an OpenMP thread spins before it sleeps, once its part of
        # a parallel region is done. libgomp's default (300,000 spins) burns
        # the core its team-mate or the web process needs: on the 2-core VM
        # at load 3-5 a one-token step took 207-307 ms spinning, 60-120 ms
        # sleeping at once (PASSIVE); a wheel step under 60 students cost
        # 140 ms of CPU against 62. Sleeping at once has its own price: a
        # forward has hundreds of regions, and waking the team for each made
        # a lone request's forward 25-45% slower than the bare one. 10,000
        # spins (tens of microseconds) keeps the team awake across the gaps
        # inside a forward, not between forwards: a cache miss went from
        # 1.45-1.62x the bare forward to 1.04-1.18x and p95 at 120 students
        # improved, for 5-8 s more model CPU a run and ~15% fewer steps/s at
        # 180 students, past capacity (README, "Class capacity"). An explicit
        # OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
        if "OMP_WAIT_POLICY" not in os.environ:
            os.environ.setdefault("GOMP_SPINCOUNT", str(OPENMP_SPIN_COUNT))
    # The tokenizer's own thread pool would compete with the forwards (and
    # warns after a fork).
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    limit_malloc_arenas()


def _libc_function(name: str):
    """A function of glibc, or None elsewhere (macOS, musl)."""
    try:
        import ctypes

        return getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):
        return None


def heap_trimmer():
    """glibc's ``malloc_trim``, or None elsewhere. Freed tensors (evicted KV
    entries, activations) stay in the process's heap otherwise: the RSS grows
    by tens of MB beyond what the caches hold."""
    return _libc_function("malloc_trim")


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """At most ``arenas`` glibc malloc arenas in this process. Under ASGI every
    request runs on a fresh thread, which gets an arena of its own; the
    probability maths done there left ~40 MB resident in those arenas after a
    class of 30 (malloc_trim cannot give it back). An explicit
    MALLOC_ARENA_MAX in the environment wins."""
    mallopt = _libc_function("mallopt")
    if mallopt is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    M_ARENA_MAX = -8
    return bool(mallopt(M_ARENA_MAX, arenas))


def set_this_threads_torch_threads(n: int) -> None:
    """torch's intra-op thread count for the calling thread. torch gives a new
    thread, on its first torch call, the count last set by any thread: that
    first call goes before ours, or it would undo it."""
    import torch

    torch.get_num_threads()
    torch.set_num_threads(n)


_maths_thread = threading.local()


def single_threaded_maths() -> None:
    """Run this thread's torch ops on this thread alone (once per thread).

    Probability maths on a request thread (a logits-cache hit, the Other
    draw) would otherwise keep an OpenMP team of that thread's own, and the
    model's forward then took 50 ms a token instead of 28 (SmolLM2-135M,
    2 cores: the teams fight over the cores). The maths is ~0.1 ms on one thread."""
    if not getattr(_maths_thread, "done", False):
        set_this_threads_torch_threads(1)
        _maths_thread.done = True


_forward_executor = None
_forward_executor_lock = threading.Lock()


def forward_thread() -> ThreadPoolExecutor:
    """The one thread that runs every model's forward passes in this process.

    Each model has its own batcher thread, but torch's OpenMP/MKL work slows
    down by ~1.8x on a thread while another live thread has done such work
    before (a one-token step of SmolLM2-135M: 28 ms alone, 50 ms beside an
    idle second model's batcher, on the 2-core VM). Forwards of two models
    would share the cores anyway, so they take turns on this thread."""
    global _forward_executor
    if _forward_executor is None:
        with _forward_executor_lock:
            if _forward_executor is None:
                _forward_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-forward")
    return _forward_executor
