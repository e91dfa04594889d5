"""The model worker's end of the channel layer.

``python manage.py runworker model-worker`` runs :class:`ModelWorkerConsumer`
on the ``model-worker`` channel; start as many as you like, on any machines
that reach the same Redis. Each loads its models once (when it starts) and
answers requests from every web process; the protocol is described in
:mod:`modelworker.channels_backend`.

Many requests are in flight at once in one worker: each runs
``Engine.handle`` on a thread of the worker's own executor, so concurrent
requests meet in the engine's batcher and share a forward pass, while the
event loop stays free to receive, send heartbeats and reply.

Nothing here imports torch at import time: web processes import this module
too (through the ASGI routing) and must never load it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor

from channels.consumer import AsyncConsumer
from django.conf import settings

from common.errors import AppError

from .errors import ModelError

log = logging.getLogger("modelworker")

WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"

# Requests whose sender gave up this long ago are dropped unanswered. Generous,
# because it compares clocks of two machines.
CLOCK_SKEW_GRACE_SECONDS = 5.0

_executor: ThreadPoolExecutor | None = None


def _config(name, default):
    return settings.MODELWORKER.get(name, default)


def executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(
            max_workers=int(_config("WORKER_THREADS", 64)), thread_name_prefix="model-worker"
        )
    return _executor


def _handle(op: str, payload_json: str) -> str:
    """Run one request on the engine; the result as JSON text."""
    from .engine import get_engine

    try:
        payload = json.loads(payload_json)
    except (TypeError, ValueError) as exc:
        raise ModelError("bad_request", f"payload is not JSON: {exc}", 400) from None
    if not isinstance(payload, dict):
        raise ModelError("bad_request", "payload must be a JSON object", 400)
    return json.dumps(get_engine().handle(op, payload))


class ModelWorkerConsumer(AsyncConsumer):
    """Answers ``model.request`` messages, from ``model-worker`` and from its
    own channel (requests of sessions whose KV cache it holds). Never awaits
    a request inside the dispatch: that would answer one request at a time."""

    async def model_request(self, message):
        if not hasattr(self, "_inflight"):
            self._inflight: dict[str, str] = {}  # request id -> its web process's heartbeat channel
            self._tasks = set()
            self._heartbeat = asyncio.ensure_future(self._heartbeats())
        task = asyncio.ensure_future(self._answer(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, message):
        reply_channel, request_id, op = message.get("reply_channel"), message.get("id"), message.get("op")
        if not reply_channel:
            log.warning("dropping a model.request without reply_channel (op %r)", op)
            return
        late = time.time() - float(message.get("deadline") or time.time())
        if late > CLOCK_SKEW_GRACE_SECONDS:
            log.warning("dropping %s: its sender gave up %.0f s ago (or this machine's clock is wrong)", op, late)
            return
        self._inflight[request_id] = message.get("heartbeat_channel") or reply_channel
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(executor(), _handle, str(op), message.get("payload"))
            body = {"result": result}
        except AppError as exc:  # crosses to the web process as the same error (ModelError.from_wire there)
            body = {"error": json.dumps(exc.to_wire())}
        except Exception as exc:  # a bug or a failed forward: still answer, never leave the web waiting
            log.exception("model request %s failed", op)
            body = {"error": json.dumps(ModelError("generation_failed", f"The model worker failed: {exc}", 500).to_wire())}
        finally:
            self._inflight.pop(request_id, None)
        await self._reply(
            reply_channel,
            {"type": "model.reply", "id": request_id, "worker": WORKER_NAME, "worker_channel": self.channel_name, **body},
        )

    async def _heartbeats(self):
        """Every HEARTBEAT_SECONDS, tell each web process which of its requests
        this worker is still working on: one message per process, not per request."""
        interval = float(_config("HEARTBEAT_SECONDS", 0.5))
        while True:
            await asyncio.sleep(interval)
            per_channel: dict[str, list[str]] = {}
            for request_id, heartbeat_channel in list(self._inflight.items()):
                per_channel.setdefault(heartbeat_channel, []).append(request_id)
            await asyncio.gather(
                *(
                    self._reply(channel, {"type": "model.working", "ids": ids, "worker": WORKER_NAME})
                    for channel, ids in per_channel.items()
                )
            )

    async def _reply(self, reply_channel, message):
        try:
            await self.channel_layer.send(reply_channel, message)
        except Exception as exc:  # Redis gone, or the web process gave up and its channel filled
            log.warning("could not answer on %s: %r", reply_channel, exc)


def start_worker():
    """Called once when this process runs ``manage.py runworker``: start
    loading the worker's models now, so the first student does not wait."""
    from .engine import get_engine

    engine = get_engine()
    models = list(_config("WORKER_MODELS", None) or [settings.MODELWORKER["DEFAULT_MODEL"]])
    log.info("model worker %s listening on %r; loading %s", WORKER_NAME, _config("CHANNEL", "model-worker"), ", ".join(models))
    for model_id in models:
        try:
            engine.start_loading(model_id)
        except ModelError as exc:
            log.warning("cannot load %s: %s", model_id, exc.message)
