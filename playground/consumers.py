"""The playground's websocket: one connection is one generation stream.

The consumer dispatches: it parses and validates each message
(:mod:`playground.protocol`, :mod:`playground.serializers`), builds runs under
the class's rules, and hands playback to :class:`playground.stream.Stream`.
Every error a client gets is an AppError's ``ws_message``; a bug is logged
and answered as ``internal_error``. The protocol is in the README.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from classrooms import metering, policy
from common.errors import AppError
from modelworker import client

from . import protocol, services
from . import serializers as s
from .preparation import ReadyModels, prepare
from .run import Run
from .stream import Stream

log = logging.getLogger("playground")


class PlaygroundConsumer(AsyncJsonWebsocketConsumer):
    # Nothing addresses a stream over the channel layer, so it takes none (an
    # alias that is not configured): no channel and no receive per student's
    # socket, and none to cancel when it closes (a cancelled channels-redis
    # receive could drop another consumer's message, django/channels#1683;
    # modelworker/redis_layer.py now guards against that for the rest).
    channel_layer_alias = "playground-streams-take-no-channel-layer"

    # ------------------------------------------------------------------ lifecycle

    async def connect(self):
        self.stream_id = str(uuid.uuid4())
        self.cache_key = f"playground:{self.stream_id}"  # the stream's KV cache in the model worker
        self.limits = protocol.limits()
        self.bucket = protocol.TokenBucket(self.limits["messages_per_second"], time.monotonic)
        self.models = ReadyModels()
        self.stream = Stream(
            self.send_json,
            self._next_token,
            prepare=self._prepare,
            stream_id=self.stream_id,
            step_timeout=self.limits["step_timeout_seconds"],
            speed_ms=self.limits["default_speed_ms"],
        )
        await self.accept()
        rules = await self._header_rules()
        await self.send_json(
            {
                "type": "hello",
                "stream_id": self.stream_id,
                "signed_in": self._user() is not None,
                "default_model": settings.MODELWORKER["DEFAULT_MODEL"],
                "limits": self.limits,
                "rules": rules.as_dict(),
            }
        )
        await self._dispatch({"type": "models"})

    async def disconnect(self, code):
        # Shielded: the server may cancel a closing consumer (after its close
        # timeout); the cache must be freed all the same.
        await asyncio.shield(asyncio.ensure_future(self._close()))

    async def _close(self):
        await self.stream.close()  # after it, no step of this stream is inside the engine
        try:
            await client.arelease(self.cache_key)
        except AppError:
            log.warning("could not release KV cache of %s", self.cache_key)
        await services.aforget_stream(self.stream_id)

    # ------------------------------------------------------------------ dispatch

    async def receive(self, text_data=None, bytes_data=None):
        try:
            msg = self._parse(text_data)
        except AppError as exc:
            await self.send_json(exc.ws_message())
            return
        await self._dispatch(msg)

    def _parse(self, text_data) -> dict:
        retry = self.bucket.take()
        if retry:
            limit = self.limits["messages_per_second"]
            raise AppError(
                "rate_limited",
                f"Too many messages: at most {limit} per second. This one was ignored.",
                429,
                retry_after_ms=int(retry * 1000) + 1,
            )
        if text_data is None:
            raise AppError("bad_message", "Messages must be JSON text, not binary frames.")
        try:
            msg = json.loads(text_data)
        except ValueError as exc:
            raise AppError("invalid_json", f"That message is not valid JSON: {exc}.") from None
        except RecursionError:  # [[[[...]]]]: json.loads gives up, the socket must not
            raise AppError("invalid_json", "That message is not valid JSON: it is nested too deeply.") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            raise AppError("bad_message", 'Each message must be a JSON object with a "type".')
        if msg["type"] not in protocol.CLIENT_TYPES:
            known = ", ".join(protocol.CLIENT_TYPES)
            raise AppError("unknown_type", f"Unknown message type {msg['type'][:40]!r}. Known: {known}.")
        return msg

    async def _dispatch(self, msg: dict):
        kind = msg["type"]
        try:
            await getattr(self, f"on_{kind}")(msg)
        except AppError as exc:
            await self.send_json(exc.ws_message(in_reply_to=kind))
        except Exception:  # noqa: BLE001 - a bug must not close the socket without a word
            log.exception("playground message %s failed", kind)
            error = AppError("internal_error", "The server could not handle that message.", 500)
            await self.send_json(error.ws_message(in_reply_to=kind))

    # ------------------------------------------------------------------ client messages

    async def on_models(self, msg):
        models = await self.models.listing()
        await self.send_json({"type": "models", "models": models, "default_model": settings.MODELWORKER["DEFAULT_MODEL"]})

    async def on_start(self, msg):
        data = protocol.validated(s.StartMessage, msg)
        await self.stream.halt()
        run = await database_sync_to_async(self._new_run)(data)
        await self.stream.start(run, paused=data["paused"], meter=self._meter(run))

    async def on_load(self, msg):
        run_id = protocol.validated(s.LoadMessage, msg)["run_id"]
        user = self._require_user("load a saved run")
        run = await database_sync_to_async(self._loaded_run)(user, run_id)
        await self.stream.start(run, paused=True, meter=self._meter(run))

    async def on_regenerate(self, msg):
        await self.stream.regenerate()

    async def on_pause(self, msg):
        await self.stream.pause()

    async def on_resume(self, msg):
        await self.stream.resume()

    async def on_stop(self, msg):
        await self.stream.stop()

    async def on_step(self, msg):
        self.stream.require_run()
        await self.stream.step(**protocol.validated(s.StepMessage, msg))

    async def on_set_speed(self, msg):
        await self.stream.set_speed(protocol.validated(s.SetSpeedMessage, msg)["speed_ms"])

    async def on_tokenize(self, msg):
        data = protocol.validated(s.TokenizeMessage, msg)
        model = data["model"] or settings.MODELWORKER["DEFAULT_MODEL"]
        window = data["context_window"] or self.limits["context_window"]
        await self.models.require(model)
        ids, tokens = [], []
        if data["text"]:
            result = await client.arequest("tokenize", model=model, text=data["text"])
            ids, tokens = result["ids"], result["tokens"]
        await self.send_json(
            {
                "type": "tokens",
                "model": model,
                "ids": ids,
                "tokens": tokens,
                "count": len(ids),
                "in_context": min(len(ids), window),
                "context_window": window,
            }
        )

    async def on_save(self, msg):
        title = protocol.validated(s.SaveMessage, msg)["title"].strip()
        user = self._require_user("save a run")
        run = self.stream.require_run()
        if not run.prompt_ids:
            raise AppError("not_started", "The run has not started yet; there is nothing to save.", 409)
        saved = await database_sync_to_async(services.save_run)(user, run.snapshot(), title)
        run.run_id = str(saved.pk)
        await self.send_json({"type": "saved", "run_id": run.run_id, "title": saved.title, "tokens": len(run.tokens)})

    # ------------------------------------------------------------------ runs (database: called in a thread)

    def _new_run(self, data: dict) -> Run:
        user = self._user()
        classroom, lesson, rules = policy.start(
            user, session=self.scope.get("session"), classroom_id=data.get("classroom_id", ...), lesson_id=data["lesson_id"]
        )
        params = policy.playground_params(
            rules,
            temperature=data["temperature"],
            top_p=data["top_p"],
            top_k=data["top_k"],
            context_window=data["context_window"],
            max_tokens=data["max_tokens"],
        )
        return Run.build(
            model=policy.check_model(rules, data["model"] or None),
            text=data["text"],
            settings={**params, "greedy": data["greedy"], "seed": data["seed"], "speed_ms": data["speed_ms"]},
            rules=rules,
            max_tokens_cap=self.limits["max_tokens"],
            classroom_id=getattr(classroom, "pk", None),
            lesson_id=getattr(lesson, "pk", None),
            quota_left=metering.remaining_quota(rules, user),
            resume_tokens=data["resume_tokens"],
        )

    def _loaded_run(self, user, run_id) -> Run:
        saved = services.get_run(user, run_id)
        # Continuing a saved run is held to the rules of its class, as a start there is.
        classroom, lesson, rules = policy.start(user, classroom_id=saved.classroom_id, lesson_id=saved.lesson_id)
        return Run.build(
            model=saved.model_name,
            text=saved.input_text,
            settings={"speed_ms": self.stream.speed_ms, **saved.settings},
            rules=rules,
            max_tokens_cap=self.limits["max_tokens"],
            classroom_id=getattr(classroom, "pk", None),
            lesson_id=getattr(lesson, "pk", None),
            run_id=str(saved.pk),
            finished_reason=saved.finished_reason or None,
            quota_left=metering.remaining_quota(rules, user),
            prompt_ids=list(saved.prompt_token_ids),
            tokens=[dict(t) for t in saved.tokens],
        )

    # ------------------------------------------------------------------ what the stream is given

    async def _prepare(self, run: Run) -> None:
        await prepare(run, self.models)
        await services.aregister_stream(self.stream_id, run.model)  # the HTTP endpoint may name this stream now

    async def _next_token(self, run: Run, index: int, chosen_token_id: int | None) -> dict:
        return await client.anext_token(
            run.model,
            run.ids(index),
            chosen_token_id=chosen_token_id,
            top_n=10,
            cache_key=self.cache_key,
            **run.sampling(index),
        )

    def _meter(self, run: Run):
        return metering.StreamMeter(run.rules, self._user(), run.model, tool="playground")

    # ------------------------------------------------------------------ helpers

    def _user(self):
        user = self.scope.get("user")
        return user if user is not None and user.is_authenticated else None

    def _require_user(self, what: str):
        user = self._user()
        if user is None:
            raise AppError("not_signed_in", f"Sign in to {what}.", 401)
        return user

    async def _header_rules(self):
        """The class rules the drawer shows (the class acting in the header)."""
        user = self._user()
        if user is None:
            return policy.open_rules()

        def rules():
            return policy.rules_for(user, policy.acting_classroom(self.scope.get("session"), user))

        try:
            return await database_sync_to_async(rules)()
        except Exception:  # noqa: BLE001 - the drawer then shows the site's limits
            log.exception("could not read the class rules for the playground")
            return policy.open_rules()
