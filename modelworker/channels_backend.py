"""Model requests over the channel layer (production).

Web processes never load a model: each request travels over the channel
layer (Redis) to the ``model-worker`` channel, where any number of
``manage.py runworker model-worker`` processes, on any machines that reach
the same Redis, take turns answering it (:mod:`modelworker.consumers`).

The protocol (every value is plain data; ``payload``, ``result`` and
``error`` are JSON text, because msgpack, the layer's wire format, cannot
carry what students type: lone surrogates, integers past 64 bits)::

    web -> "model-worker"   {"type": "model.request", "id", "op", "payload",
                             "reply_channel", "deadline"}
    worker -> reply_channel {"type": "model.working", "id", "worker"}   every HEARTBEAT_SECONDS
    worker -> reply_channel {"type": "model.reply", "id", "worker", "result" | "error"}

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
import json
import logging
import threading
import time
import uuid
import weakref

from django.conf import settings

from .errors import ModelError

log = logging.getLogger("modelworker")

REPLY_PREFIX = "model-reply"

try:  # the Redis layer is optional: tests and `make run` use the in-memory one
    from channels_redis.core import RedisChannelLayer as _RedisChannelLayer
    from redis.exceptions import ConnectionError as _RedisConnectionError
    from redis.exceptions import RedisError as _RedisError
    from redis.exceptions import TimeoutError as _RedisTimeoutError
except ImportError:  # pragma: no cover - channels-redis is a dependency
    _RedisChannelLayer = object
    _RedisError = _RedisConnectionError = _RedisTimeoutError = OSError

# What a lost or refused Redis connection raises, wherever it surfaces.
BROKER_ERRORS = (_RedisError, OSError)


def _config(name, default):
    return settings.MODELWORKER.get(name, default)


class RedisChannelLayer(_RedisChannelLayer):
    """channels-redis with two fixes production needs.

    * Several receivers on one general channel (two model workers on
      ``model-worker``) share one ``$inflight`` backup list in channels-redis;
      each receive first pushes that whole list back, including messages the
      other worker has just taken, so ~15% of requests ran twice
      (django/channels_redis#163). General channels here are popped plainly:
      at most once, as the channel-layer spec asks. Process-specific channels
      (replies, websockets) keep the original code: only one process reads them.
    * ``receive()`` survives a Redis outage: it retries until Redis is back
      instead of raising, so ``runworker`` and websocket consumers do not die
      with it. Senders still see the error at once (and answer 503).
    """

    RETRY_MAX_SECONDS = 2.0

    async def _brpop_with_clean(self, index, channel, timeout):
        if "!" in channel:
            return await super()._brpop_with_clean(index, channel, timeout)
        result = await self.connection(index).bzpopmin(channel, timeout=timeout)
        return None if result is None else result[1]

    async def _clean_receive_backup(self, index, channel):
        if "!" in channel:
            await super()._clean_receive_backup(index, channel)

    async def receive(self, channel):
        delay = 0.1
        failing_since = None
        while True:
            try:
                message = await super().receive(channel)
            except BROKER_ERRORS as exc:
                if failing_since is None:
                    failing_since = time.monotonic()
                    log.warning("Redis unreachable while receiving on %s (%s); retrying until it is back", channel, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.RETRY_MAX_SECONDS)
                continue
            if failing_since is not None:
                log.warning("Redis is back after %.1f s", time.monotonic() - failing_since)
            return message


class _Lost(Exception):
    """No worker said anything for LIVENESS_SECONDS."""

    def __init__(self, heard: bool):
        self.heard = heard


class ChannelLayerBackend:
    """``modelworker.client``'s backend when ``MODELWORKER["BACKEND"] == "channels"``."""

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
        self._waiting: set[str] = set()
        self.retries = 0  # requests sent again after their worker went silent

    # ---- the two entry points

    def request(self, op: str, payload: dict) -> dict:
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
        future = asyncio.run_coroutine_threadsafe(self.arequest(op, payload), self._own_loop())
        return future.result()

    async def arequest(self, op: str, payload: dict) -> dict:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        body = json.dumps(payload)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(op, body, deadline)
            except _Lost as lost:
                left = deadline - loop.time()
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

    def preload(self, model_id: str):
        """Workers load their models when they start; nothing to do here."""

    # ---- internals

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

    async def _attempt(self, op: str, body: str, deadline: float) -> dict:
        loop = asyncio.get_running_loop()
        layer = self._layer()
        request_id = uuid.uuid4().hex
        reply_channel = await layer.new_channel(REPLY_PREFIX)
        message = {
            "type": "model.request",
            "id": request_id,
            "op": op,
            "payload": body,
            "reply_channel": reply_channel,
            "deadline": time.time() + max(0.0, deadline - loop.time()),
        }
        self._waiting.add(reply_channel)
        try:
            await self._send(layer, message, deadline)
            return await self._await_reply(layer, reply_channel, request_id, deadline)
        finally:
            self._waiting.discard(reply_channel)
            self._forget(layer, reply_channel)

    async def _send(self, layer, message, deadline):
        from channels.exceptions import ChannelFull

        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(layer.send(self.channel, message), max(0.1, min(5.0, deadline - loop.time())))
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

    async def _await_reply(self, layer, reply_channel, request_id, deadline):
        loop = asyncio.get_running_loop()
        last_word = loop.time()
        heard = False
        while True:
            now = loop.time()
            if now >= deadline:
                raise ModelError(
                    "worker_timeout", f"The model worker did not answer within {self.timeout:g} s; try again.", 503
                )
            wait = min(deadline, last_word + self.liveness) - now
            if wait <= 0:
                raise _Lost(heard)
            try:
                reply = await asyncio.wait_for(layer.receive(reply_channel), wait)
            except asyncio.TimeoutError:
                continue
            except BROKER_ERRORS as exc:  # the in-memory layer never raises these
                raise ModelError("worker_unavailable", f"The message broker (Redis) was lost: {exc}", 503) from None
            if reply.get("id") != request_id:
                continue
            last_word = loop.time()
            heard = True
            if reply.get("type") == "model.working":
                continue
            if reply.get("error") is not None:
                raise ModelError.from_dict(json.loads(reply["error"]))
            return json.loads(reply["result"])

    def _forget(self, layer, reply_channel):
        """Drop what channels-redis buffered for reply channels nobody awaits
        (a heartbeat that crossed the reply, a worker that answered after we
        gave up): it keeps one queue per channel name forever otherwise."""
        buffers = getattr(layer, "receive_buffer", None)
        if buffers is None:
            return
        buffers.pop(reply_channel, None)
        if len(buffers) > len(self._waiting) + 64:
            for name in list(buffers):
                if name.startswith(REPLY_PREFIX) and name not in self._waiting:
                    buffers.pop(name, None)
