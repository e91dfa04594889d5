"""The embedded default's backend: the engine in a child process of the web process.

Why a process and not a thread: a forward pass of the model runs ~1,000
torch ops from Python, and each takes the interpreter lock back when its
kernel ends. Beside a class's requests (Django, DRF, SQLite: all Python) the
forward thread waited for the lock at nearly every op: under 120 students a
30-row one-token step took ~1 s instead of ~0.13 s, with the cores half
idle (``benchmarks/capacity.py``, README). The child has an interpreter
lock of its own, so its forwards run at their quiet-machine speed while the
web process serves requests. Serving systems split the same way (vLLM's
front end and engine core).

The two talk over one ``multiprocessing`` pipe: ``(id, op, payload)`` one way, ``(id, ok, result or error wire)`` back, many requests
in flight at once. Requests wait for their reply within the caller's
deadline (:func:`modelworker.client.deadline`). If the child dies, the
requests in flight get 503 ``model_unavailable`` and the next request starts
a new child. The child exits when the web process does (its end of the pipe
closes).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from .errors import ModelError

log = logging.getLogger("modelworker")

_PRELOAD = "__preload__"
_STOP = "__stop__"


class ProcessBackend:
    # How long past its deadline a request may wait for the child's own 503.
    BACKSTOP_SECONDS = 0.5

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._start_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._pending: dict[int, Future] = {}
        self._ids = itertools.count(1)
        self._conn = None
        self._stopping = None  # the pipe close() is ending: its child's exit is no news
        self.process = None

    # ---- the two entry points

    def request(self, op: str, payload: dict, deadline: float | None = None) -> dict:
        future, left = self._send(op, payload, deadline)
        try:
            return future.result(left + self.BACKSTOP_SECONDS)
        except FutureTimeout:
            raise self._timed_out(future) from None

    async def arequest(self, op: str, payload: dict, deadline: float | None = None) -> dict:
        future, left = self._send(op, payload, deadline)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), left + self.BACKSTOP_SECONDS)
        except TimeoutError:
            raise self._timed_out(future) from None

    def preload(self, model_id: str):
        self._post((0, _PRELOAD, {"model": model_id}))

    # ---- the web process's side of the pipe

    def _send(self, op: str, payload: dict, deadline: float | None) -> tuple[Future, float]:
        latest = time.monotonic() + self.timeout
        left = max(0.0, (latest if deadline is None else min(deadline, latest)) - time.monotonic())
        if left <= 0:
            raise ModelError("worker_timeout", "The request's time ran out before the model was asked.", 503)
        conn = self._connection()
        future: Future = Future()
        future.request_id, future.conn = next(self._ids), conn
        self._pending[future.request_id] = future
        try:
            self._post((future.request_id, op, payload), conn)
        except BaseException:
            self._pending.pop(future.request_id, None)
            raise
        return future, left

    def _post(self, message, conn=None):
        conn = conn or self._connection()
        try:
            with self._send_lock:
                conn.send(message)
        except (OSError, ValueError) as exc:  # the child died between the check and the send
            raise ModelError("model_unavailable", f"The model process is not running ({exc}); try again.", 503) from None

    def _timed_out(self, future: Future) -> ModelError:
        self._pending.pop(getattr(future, "request_id", None), None)
        return ModelError("worker_timeout", f"The model did not answer within {self.timeout:g} s; try again.", 503)

    def _connection(self):
        with self._start_lock:
            if self._conn is None or self.process is None or not self.process.is_alive():
                self._start()
            return self._conn

    def _start(self):
        # spawn, not fork: a fork of a threaded web process (and of torch's
        # thread pools, should torch be loaded) is not safe.
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(
            target=serve,
            args=(theirs, os.environ.get("DJANGO_SETTINGS_MODULE", "tokenwheel_site.settings")),
            name="tokenwheel-model",
            daemon=True,
        )
        process.start()
        theirs.close()
        self._conn, self.process = ours, process
        threading.Thread(target=self._read, args=(ours, process), name="model-process-replies", daemon=True).start()
        log.info("model process %s started", process.pid)

    def _read(self, conn, process):
        """Hand each reply to its waiting request; when the child is gone, fail the rest."""
        while True:
            try:
                rid, ok, result = conn.recv()
            except (EOFError, OSError):
                break
            future = self._pending.pop(rid, None)
            if future is None or future.done():
                continue  # its caller gave up
            if ok:
                future.set_result(result)
            else:
                future.set_exception(ModelError.from_wire(result))
        with self._start_lock:
            if self._conn is conn:
                self._conn = None
        process.join(1)
        level = logging.INFO if conn is self._stopping else logging.WARNING
        log.log(level, "model process %s stopped (exit code %s)", process.pid, process.exitcode)
        for rid in list(self._pending):
            future = self._pending.get(rid)
            if future is not None and future.conn is conn and not future.done():
                self._pending.pop(rid, None)
                future.set_exception(ModelError("model_unavailable", "The model process stopped; try again.", 503))

    def close(self):
        """Stop the child (tests; the web process's exit does it anyway)."""
        with self._start_lock:
            conn, process, self._conn = self._conn, self.process, None
            self._stopping = conn
        if conn is not None:
            # Closing our end is not enough: the reply thread, blocked reading
            # it, keeps the socket open until the child writes.
            try:
                with self._send_lock:
                    conn.send((0, _STOP, {}))
            except (OSError, ValueError):
                pass
        if process is not None:
            process.join(5)
            if process.is_alive():
                process.kill()


# ---- the child process


def serve(conn, settings_module: str):
    """The child's main: answer requests until the web process closes the pipe."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module)
    # No tqdm bar for loading weights: it drew on the server's console, and
    # its multiprocessing lock leaked at this process's os._exit (a
    # resource_tracker warning each time the child ended).
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import django

    django.setup()
    from django.conf import settings

    from .engine import get_engine

    engine = get_engine()
    send_lock = threading.Lock()
    # Each request blocks in the engine until its batch is done: a thread per
    # request in flight, as the channels worker has.
    pool = ThreadPoolExecutor(max_workers=int(settings.MODELWORKER["WORKER_THREADS"]), thread_name_prefix="model-request")

    def answer(rid, op, payload):
        try:
            reply = (rid, True, engine.handle(op, payload))
        except ModelError as exc:
            reply = (rid, False, exc.to_wire())
        except Exception as exc:  # never leave a caller waiting for its timeout
            log.exception("model request %s failed", op)
            reply = (rid, False, ModelError("generation_failed", f"Generation failed: {exc}", 500).to_wire())
        with send_lock:
            try:
                conn.send(reply)
            except (OSError, ValueError):
                pass  # the web process is gone; the loop below ends too

    while True:
        try:
            rid, op, payload = conn.recv()
        except (EOFError, OSError):
            break
        if op == _STOP:
            break
        if op == _PRELOAD:
            try:
                engine.start_loading(payload["model"])
            except ModelError as exc:
                log.warning("cannot load %s: %s", payload["model"], exc.message)
            continue
        pool.submit(answer, rid, op, payload)
    os._exit(0)  # the batcher and request threads are daemons or blocked: leave now
