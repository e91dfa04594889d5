"""The only door from web code to the models.

Every call is a message: an operation name and plain data, answered by
plain data or a :class:`ModelError`. The backend is a setting
(``MODELWORKER["BACKEND"]``):

* ``process`` (the embedded default): the engine runs in a child process of
  this one (:mod:`.process_backend`), so its forwards never wait for this
  process's interpreter lock;
* ``inprocess``: the engine runs in this process, forward passes on its own
  threads (the test suite, scripts);
* ``channels`` (production): requests travel over the channel layer to
  ``manage.py runworker model-worker`` processes.

Web code never imports torch; it calls the functions below (sync views) or
their ``a``-prefixed twins (consumers).

Every call ends within ``MODELWORKER["TIMEOUT_SECONDS"]``. Inside
:func:`deadline` (an HTTP request, through :mod:`modelworker.middleware`)
the calls share one budget that started when the request came in, so a
view that makes two calls, or that first waited on a stalled cache, still
answers by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings

from .errors import ModelError

__all__ = ["ModelError", "request", "arequest", "deadline"]

# time.monotonic() by which the current request's model calls must be done, or None.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("modelworker_deadline", default=None)


@contextlib.contextmanager
def deadline(seconds: float | None = None):
    """Model calls made inside share one budget of ``seconds`` (default: the timeout)."""
    seconds = settings.MODELWORKER["TIMEOUT_SECONDS"] if seconds is None else seconds
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


class InProcessBackend:
    def __init__(self):
        # Consumers must never run inference on asgiref's one shared
        # sync_to_async thread: async calls get an executor of their own.
        self._executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix="modelworker-client")

    @staticmethod
    def _engine():
        from .engine import get_engine

        return get_engine()

    def request(self, op: str, payload: dict, deadline: float | None = None) -> dict:
        return self._engine().handle(op, payload)

    async def arequest(self, op: str, payload: dict, deadline: float | None = None) -> dict:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.request, op, payload)

    def preload(self, model_id: str):
        self._engine().start_loading(model_id)


_backend = None
_backend_lock = threading.Lock()


def backend():
    global _backend
    if _backend is None:
        with _backend_lock:
            if _backend is None:
                name = settings.MODELWORKER["BACKEND"]
                if name == "process":
                    from .process_backend import ProcessBackend

                    _backend = ProcessBackend(float(settings.MODELWORKER["TIMEOUT_SECONDS"]))
                elif name == "inprocess":
                    _backend = InProcessBackend()
                elif name == "channels":
                    from .channels_backend import ChannelLayerBackend

                    _backend = ChannelLayerBackend()
                else:
                    from django.core.exceptions import ImproperlyConfigured

                    raise ImproperlyConfigured(f"MODELWORKER_BACKEND must be process, inprocess or channels, not {name!r}")
    return _backend


def request(op: str, **payload) -> dict:
    return backend().request(op, payload, deadline=_deadline.get())


async def arequest(op: str, **payload) -> dict:
    return await backend().arequest(op, payload, deadline=_deadline.get())


def default_model() -> str:
    return settings.MODELWORKER["DEFAULT_MODEL"]


def preload_default():
    """Start loading the default model in the background (embedded mode only)."""
    if settings.MODELWORKER["PRELOAD"] and settings.MODELWORKER["BACKEND"] != "channels":
        try:
            backend().preload(default_model())
        except ModelError:
            pass


# ---- named operations (thin wrappers that document the message shapes) ----


def models() -> list[dict]:
    """Every registered model: id, name, description, parameters, default,
    status (``not_loaded``/``loading``/``ready``/``unavailable``) and reason."""
    return request("models")["models"]


def tokenize(model: str, text: str) -> dict:
    """``{"ids": [...], "tokens": [...]}``; ModelError ``unknown_characters`` if
    the tokenizer cannot carry ``text`` unchanged."""
    return request("tokenize", model=model, text=text)


def decode(model: str, ids: list[int]) -> str:
    return _at_context("decode", model, ids)["text"]


def lookup(model: str, text: str) -> int | None:
    """The vocabulary id whose text is exactly ``text``, or None."""
    return request("lookup", model=model, text=text)["token_id"]


def _at_context(op: str, model, ids, **params) -> dict:
    """An operation at a context: the token ids ``ids`` read by ``model``."""
    return request(op, model=model, ids=list(ids), **params)


def distribution(model, ids, *, threshold, temperature, top_p, other_top_k, cache_key=None) -> dict:
    """The wheel: above-threshold tokens, Other (total, count, samples), vocabulary size."""
    return _at_context(
        "distribution", model, ids,
        threshold=threshold, temperature=temperature, top_p=top_p, other_top_k=other_top_k, cache_key=cache_key,
    )


def choose(model, ids, *, mode, token_id=None, threshold, temperature, top_p, seed=None, cache_key=None,
           prefetch=False) -> dict:
    """The next token by ``mode`` (token/other/sample/greedy), judged against
    the distribution at these parameters: id, text, probability, category,
    and ``text``, the whole text with it. ``prefetch``: start computing the
    distribution after the chosen token now (the wheel's next step, asked
    for next), so it is ready or coming when that request arrives."""
    return _at_context(
        "choose", model, ids, mode=mode, token_id=token_id,
        threshold=threshold, temperature=temperature, top_p=top_p, seed=seed, cache_key=cache_key, prefetch=prefetch,
    )


def rank(model, ids, token_id, *, threshold, temperature, top_p, cache_key=None) -> dict:
    """Where ``token_id`` stands at this context: probability, rank (1 = top),
    category, and the model's ``top_token``."""
    return _at_context(
        "rank", model, ids, token_id=token_id,
        threshold=threshold, temperature=temperature, top_p=top_p, cache_key=cache_key,
    )


def continue_text(model, ids, *, n, mode, temperature=1.0, top_p=1.0, top_k=0, seed=None) -> dict:
    """Up to ``n`` more tokens (greedy or sampled), changing nothing stored."""
    return _at_context("continue", model, ids, n=n, mode=mode, temperature=temperature, top_p=top_p, top_k=top_k, seed=seed)


def release(cache_key: str, model: str | None = None) -> None:
    request("release", cache_key=cache_key, model=model)


async def arelease(cache_key: str, model: str | None = None) -> None:
    await arequest("release", cache_key=cache_key, model=model)


async def anext_token(model, ids, **params) -> dict:
    """One playground step (see ``Engine.op_next_token``)."""
    return await arequest("next_token", model=model, ids=list(ids), **params)


def stats() -> dict:
    """Request latency p50/p95, cache hit rates and batch sizes of the engine."""
    return request("stats")
