"""Model requests over the channel layer (production).

Web processes never load a model: each request travels over the channel
layer (Redis) to the ``model-worker`` channel, where any number of
``manage.py runworker model-worker`` processes, on any machines that reach
the same Redis, take turns answering it (:mod:`modelworker.consumers`).

The protocol (every value is plain data; ``payload``, ``result`` and
``error`` are JSON text, because msgpack, the layer's wire format, cannot
carry what students type: lone surrogates, integers past 64 bits)::

    web -> "model-worker"   {"type": "model.request", "id", "op", "payload",
                             "reply_channel", "heartbeat_channel", "deadline"}
    worker -> reply_channel {"type": "model.reply", "id", "worker", "worker_channel",
                             "result" | "error"}
    worker -> heartbeat_channel, every HEARTBEAT_SECONDS while it works:
                            {"type": "model.working", "ids": [every request from that
                             web process it is still working on], "worker"}

``reply_channel`` and ``heartbeat_channel`` are one channel per web process
and event loop, its inbox, read by one task that is never cancelled and
that hands each reply to the request with its ``id``: one heartbeat message
per web process, not one per request. Never a receive per request: a
channels-redis ``receive()`` cancelled by a timeout can lose a message that
it had already taken from Redis, or leave its receive lock held so that
every later receive in the process waits forever (both seen on this
machine: ``tests/production/test_channels_backend_redis.py``).

A request that carries a ``cache_key`` (a wheel session, a playground
stream) goes, after its first answer, straight to the worker that answered
it (``worker_channel``, that worker's own channel), so every step extends
the KV cache that worker already holds instead of re-reading the context on
another one. If that worker goes silent, the request falls back to
``model-worker``.

Channel layers deliver at most once, so the web side never trusts a message
to arrive. It waits for the reply for at most ``TIMEOUT_SECONDS``, and for
any word from a worker at most ``LIVENESS_SECONDS``: a worker that goes
silent (killed, its machine gone) is noticed within that time and the
request is sent once more, to be answered by another worker. Every engine
operation is a pure function of its payload, so a repeat is harmless.
What still fails becomes a :class:`ModelError` with status 503 and a message
a teacher can act on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
import uuid
import weakref
from collections import OrderedDict

from django.conf import settings

from .errors import ModelError
from .redis_layer import BROKER_ERRORS

log = logging.getLogger("modelworker")

def _config(name, default):
    return settings.MODELWORKER.get(name, default)


# The inboxes' channel prefix (replies and heartbeats both come there).
REPLY_PREFIX = "model-reply"


class _Lost(Exception):
    """No word from the worker about this request for LIVENESS_SECONDS."""

    def __init__(self, heard: bool):
        self.heard = heard


class ChannelLayerBackend:
    """``modelworker.client``'s backend when ``MODELWORKER["BACKEND"] == "channels"``."""

    AFFINITY_ENTRIES = 20000
    # How long past its deadline a request may take to unwind before it is cut off.
    BACKSTOP_SECONDS = 0.5

    def __init__(self):
        self.channel = _config("CHANNEL", "model-worker")
        self.timeout = float(_config("TIMEOUT_SECONDS", 30.0))
        self.liveness = float(_config("LIVENESS_SECONDS", 2.0))
        # One channel-layer instance per event loop: channels-redis refuses
        # two loops receiving on one instance, and sync callers run on the
        # backend's own loop (below), async ones on theirs.
        self._layers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._layers_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_lock = threading.Lock()
        # request id -> time.monotonic() of the last word about it (heartbeats included).
        self._heard: dict[str, float] = {}
        # request id -> the future its reply is handed to (by its layer's inbox reader).
        self._replies: dict[str, asyncio.Future] = {}
        self._inboxes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # layer -> its inbox channel
        # cache_key (a wheel session, a playground stream) -> the worker channel
        # that holds its KV cache: later steps go there, not to any worker.
        self._affinity: OrderedDict[str, str] = OrderedDict()
        self.retries = 0  # requests sent again after their worker went silent
        self.late_replies = 0  # replies that came after their request gave up on them

    # ---- the two entry points

    def request(self, op: str, payload: dict, deadline: float | None = None) -> dict:
        """Blocking call for sync code (Django views, management commands).

        The request runs on an event loop this backend owns, on its own
        thread, so it works the same under daphne, in tests and in a shell,
        and all sync callers of a process share one Redis connection pool.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError("modelworker.client.request() blocks: call arequest() from async code")
        deadline = self._deadline(deadline)
        future = asyncio.run_coroutine_threadsafe(self.arequest(op, payload, deadline), self._own_loop())
        try:
            # arequest keeps the deadline itself; this is the backstop should
            # anything on that loop ever stop honouring it.
            return future.result(max(0.0, deadline - time.monotonic()) + self.BACKSTOP_SECONDS)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise self._timed_out() from None

    async def arequest(self, op: str, payload: dict, deadline: float | None = None) -> dict:
        deadline = self._deadline(deadline)
        try:
            async with asyncio.timeout_at(self._loop_time(deadline) + self.BACKSTOP_SECONDS):
                return await self._arequest(op, payload, deadline)
        except TimeoutError:
            raise self._timed_out() from None

    async def _arequest(self, op: str, payload: dict, deadline: float) -> dict:
        if deadline <= time.monotonic():  # the caller's budget went on something else
            raise self._timed_out()
        body = json.dumps(payload)
        cache_key = payload.get("cache_key") if isinstance(payload.get("cache_key"), str) else None
        attempt = 0
        while True:
            attempt += 1
            pinned = self._affinity.get(cache_key) if cache_key else None
            try:
                result, worker_channel = await self._attempt(op, body, deadline, pinned or self.channel)
            except _Lost as lost:
                if cache_key:
                    self._affinity.pop(cache_key, None)
                left = deadline - time.monotonic()
                if attempt == 1 and left > self.liveness:
                    self.retries += 1
                    log.warning("no word from a model worker for %.1f s on %s; sending it again", self.liveness, op)
                    continue
                if lost.heard:
                    raise ModelError(
                        "worker_unavailable",
                        "The model worker answering this request stopped responding, and no other worker took over. "
                        "Check that `manage.py runworker model-worker` processes are running.",
                        503,
                    ) from None
                raise ModelError(
                    "worker_unavailable",
                    f"No model worker picked up the request within {self.liveness:g} s. "
                    "Start one with `python manage.py runworker model-worker` on a machine that reaches the same Redis.",
                    503,
                ) from None
            self._remember_worker(op, cache_key, worker_channel)
            return result

    def preload(self, model_id: str):
        """Workers load their models when they start; nothing to do here."""

    # ---- internals

    def _deadline(self, deadline: float | None) -> float:
        """The caller's deadline (time.monotonic()), never later than the timeout from now."""
        latest = time.monotonic() + self.timeout
        return latest if deadline is None else min(deadline, latest)

    @staticmethod
    def _loop_time(deadline: float) -> float:
        return asyncio.get_running_loop().time() + (deadline - time.monotonic())

    def _timed_out(self) -> ModelError:
        return ModelError("worker_timeout", f"The model worker did not answer within {self.timeout:g} s; try again.", 503)

    def _remember_worker(self, op, cache_key, worker_channel):
        if not cache_key:
            return
        if op == "release" or not worker_channel:
            self._affinity.pop(cache_key, None)
            return
        self._affinity[cache_key] = worker_channel
        self._affinity.move_to_end(cache_key)
        while len(self._affinity) > self.AFFINITY_ENTRIES:
            self._affinity.popitem(last=False)

    def _own_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            with self._loop_lock:
                if self._loop is None:
                    loop = asyncio.new_event_loop()
                    thread = threading.Thread(target=loop.run_forever, name="modelworker-channels", daemon=True)
                    thread.start()
                    self._loop = loop
        return self._loop

    def _layer(self):
        from channels import DEFAULT_CHANNEL_LAYER
        from channels.layers import InMemoryChannelLayer, channel_layers, get_channel_layer

        shared = get_channel_layer()
        if shared is None:
            raise ModelError("worker_unavailable", "MODELWORKER_BACKEND=channels needs CHANNEL_LAYERS (set REDIS_URL).", 503)
        if isinstance(shared, InMemoryChannelLayer):
            return shared  # one process, one loop: tests only
        loop = asyncio.get_running_loop()
        with self._layers_lock:
            layer = self._layers.get(loop)
            if layer is None:
                layer = self._layers[loop] = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        return layer

    async def _inbox(self, layer) -> str:
        """This layer's (this loop's) inbox channel, and the task that reads it."""
        name = self._inboxes.get(layer)
        if name is None:
            name = await layer.new_channel(REPLY_PREFIX)
            if layer in self._inboxes:  # another coroutine won the race
                return self._inboxes[layer]
            self._inboxes[layer] = name
            asyncio.ensure_future(self._read_inbox(layer, name))
        return name

    async def _read_inbox(self, layer, name):
        while True:
            try:
                message = await layer.receive(name)
            except Exception:  # never stop listening: a silent inbox would make every worker look dead
                log.exception("reading the model workers' replies failed")
                await asyncio.sleep(0.5)
                continue
            if message.get("type") == "model.reply":
                waiting = self._replies.get(message.get("id"))
                if waiting is not None and not waiting.done():
                    waiting.set_result(message)
                else:  # nobody waits for it any more (it gave up): dropped
                    self.late_replies += 1
                continue
            heard_at = time.monotonic()
            for request_id in message.get("ids") or ():
                if request_id in self._heard:
                    self._heard[request_id] = heard_at

    async def _attempt(self, op: str, body: str, deadline: float, channel: str):
        layer = self._layer()
        request_id = uuid.uuid4().hex
        inbox = await self._inbox(layer)
        message = {
            "type": "model.request",
            "id": request_id,
            "op": op,
            "payload": body,
            "reply_channel": inbox,
            "heartbeat_channel": inbox,
            "deadline": time.time() + max(0.0, deadline - time.monotonic()),
        }
        reply = self._replies[request_id] = asyncio.get_running_loop().create_future()
        self._heard[request_id] = time.monotonic()
        try:
            await self._send(layer, channel, message, deadline)
            return await self._await_reply(reply, request_id, deadline)
        finally:
            self._replies.pop(request_id, None)
            self._heard.pop(request_id, None)

    async def _send(self, layer, channel, message, deadline):
        from channels.exceptions import ChannelFull

        try:
            await asyncio.wait_for(layer.send(channel, message), max(0.1, min(5.0, deadline - time.monotonic())))
        except ChannelFull:
            raise ModelError(
                "worker_busy",
                "The model workers are overloaded (their request queue is full); try again in a moment.",
                503,
            ) from None
        except asyncio.TimeoutError:
            raise ModelError(
                "worker_unavailable", "The message broker (Redis) did not accept the request in time.", 503
            ) from None
        except BROKER_ERRORS as exc:
            raise ModelError("worker_unavailable", f"The message broker (Redis) cannot be reached: {exc}", 503) from None

    async def _await_reply(self, reply: asyncio.Future, request_id, deadline):
        sent_at = time.monotonic()
        while not reply.done():
            now = time.monotonic()
            if now >= deadline:
                raise self._timed_out()
            last_word = self._heard.get(request_id, sent_at)
            wait = min(deadline, last_word + self.liveness) - now
            if wait <= 0:
                raise _Lost(heard=last_word > sent_at)
            # asyncio.wait, not wait_for: a timeout leaves the future (and the inbox's receive) alone.
            await asyncio.wait({reply}, timeout=wait)
        message = reply.result()
        if message.get("error") is not None:
            raise ModelError.from_dict(json.loads(message["error"]))
        return json.loads(message["result"]), message.get("worker_channel")
