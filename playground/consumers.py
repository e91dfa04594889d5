"""The playground's websocket: one connection is one generation stream.

The consumer only relays and paces. Each token is one ``client.anext_token``
call (the engine extends this stream's KV cache and batches the step with
every other stream's); generation runs as an asyncio task so ``pause``,
``stop`` and disconnects are handled while a step is in flight.
The protocol is in :mod:`playground.protocol` and the README.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from classrooms import policy
from modelworker import client

from . import protocol, services
from .protocol import ProtocolError

log = logging.getLogger("playground")

MAX_PENDING_STEPS = 8
USAGE_FLUSH_TOKENS = 25
USAGE_FLUSH_SECONDS = 2.0


@dataclass
class Run:
    """One generation: its input, settings, tokens and where playback is."""

    model: str
    text: str
    temperature: float
    top_k: int
    top_p: float
    greedy: bool
    seed: int | None
    speed_ms: int
    context_window: int
    max_tokens: int
    rules: object
    classroom_id: int | None = None
    lesson_id: int | None = None
    run_id: str | None = None  # the saved run this one was loaded from
    state: str = "starting"  # starting | playing | paused | finished
    start_paused: bool = False
    finished_reason: str | None = None
    prompt_ids: list = field(default_factory=list)
    prompt_tokens: list = field(default_factory=list)
    tokens: list = field(default_factory=list)
    pending: deque = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    epoch: int = 0  # bumped when playback is interrupted: an autoplay step in flight is dropped
    last_emit: float = 0.0
    quota_left: int | None = None
    resume_tokens: list = field(default_factory=list)
    count_session: bool = False

    def ids(self, upto: int | None = None) -> list[int]:
        upto = len(self.tokens) if upto is None else upto
        return self.prompt_ids + [t["token_id"] for t in self.tokens[:upto]]

    def settings(self) -> dict:
        return {
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "greedy": self.greedy,
            "seed": self.seed,
            "speed_ms": self.speed_ms,
            "context_window": self.context_window,
            "max_tokens": self.max_tokens,
        }

    def snapshot(self) -> dict:
        return {
            "model": self.model,
            "text": self.text,
            "prompt_ids": list(self.prompt_ids),
            "tokens": [dict(t) for t in self.tokens],
            "settings": self.settings(),
            "finished_reason": self.finished_reason,
            "classroom_id": self.classroom_id,
            "lesson_id": self.lesson_id,
        }

    def fresh_copy(self) -> "Run":
        """The same input and settings, no tokens: what ``regenerate`` plays."""
        return Run(
            model=self.model,
            text=self.text,
            temperature=self.temperature,
            top_k=self.top_k,
            top_p=self.top_p,
            greedy=self.greedy,
            seed=self.seed,
            speed_ms=self.speed_ms,
            context_window=self.context_window,
            max_tokens=self.max_tokens,
            rules=self.rules,
            classroom_id=self.classroom_id,
            lesson_id=self.lesson_id,
            quota_left=self.quota_left,
        )


class PlaygroundConsumer(AsyncJsonWebsocketConsumer):
    # ------------------------------------------------------------------ lifecycle

    async def connect(self):
        self.stream_id = str(uuid.uuid4())
        self.cache_key = f"playground:{self.stream_id}"
        self.limits = protocol.limits()
        self.bucket = protocol.TokenBucket(self.limits["messages_per_second"], time.monotonic)
        self.run: Run | None = None
        self.task: asyncio.Task | None = None
        self.inflight: set[asyncio.Future] = set()
        self.ready_models: set[str] = set()
        self.model_entries: dict[str, dict] = {}
        self.speed_ms = self.limits["default_speed_ms"]
        self.usage_pending = 0
        self.usage_rules = None
        self.usage_model = None
        self.usage_flushed_at = time.monotonic()
        await self.accept()
        user = self.scope.get("user")
        rules = await self._header_rules()
        await self.send_json(
            {
                "type": "hello",
                "stream_id": self.stream_id,
                "signed_in": bool(user is not None and user.is_authenticated),
                "default_model": settings.MODELWORKER["DEFAULT_MODEL"],
                "limits": self.limits,
                "rules": rules.as_dict() if rules is not None else None,
            }
        )
        await self.on_models({})

    async def disconnect(self, code):
        # Shielded: the server may cancel a closing consumer (after its close
        # timeout); the cache must be freed all the same.
        await asyncio.shield(asyncio.ensure_future(self._close_stream()))

    async def _close_stream(self):
        # Stop generating at once, wait for a step already inside the engine
        # (it would write this stream's KV entry after we free it), then free it.
        await self._cancel_task()
        if self.inflight:
            await asyncio.wait(list(self.inflight), timeout=self.limits["step_timeout_seconds"] + 1)
        await self._flush_usage(force=True, quiet=True)
        try:
            await client.arelease(self.cache_key)
        except client.ModelError:
            log.warning("could not release KV cache of %s", self.cache_key)
        await services.aforget_stream(self.stream_id)

    async def receive(self, text_data=None, bytes_data=None):
        retry = self.bucket.take()
        if retry:
            limit = self.limits["messages_per_second"]
            await self._error(
                "rate_limited",
                f"Too many messages: at most {limit} per second. This one was ignored.",
                retry_after_ms=int(retry * 1000) + 1,
            )
            return
        if text_data is None:
            await self._error("bad_message", "Messages must be JSON text, not binary frames.")
            return
        try:
            msg = json.loads(text_data)
        except ValueError as exc:
            await self._error("invalid_json", f"That message is not valid JSON: {exc}.")
            return
        except RecursionError:  # [[[[...]]]]: json.loads gives up, the socket must not
            await self._error("invalid_json", "That message is not valid JSON: it is nested too deeply.")
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            await self._error("bad_message", 'Each message must be a JSON object with a "type".')
            return
        kind = msg["type"]
        if kind not in protocol.CLIENT_TYPES:
            await self._error(
                "unknown_type", f"Unknown message type {kind[:40]!r}. Known: {', '.join(protocol.CLIENT_TYPES)}."
            )
            return
        try:
            await getattr(self, f"on_{kind}")(msg)
        except ProtocolError as exc:
            await self._error(exc.code, exc.message, in_reply_to=kind, **exc.extra)
        except policy.PolicyError as exc:
            await self._error(exc.code, exc.message, in_reply_to=kind)
        except client.ModelError as exc:
            await self._error(exc.code, exc.message, in_reply_to=kind, **_jsonable(exc.extra))
        except Exception:  # noqa: BLE001 - a bug must not close the socket without a word
            log.exception("playground message %s failed", kind)
            await self._error("internal_error", "The server could not handle that message.", in_reply_to=kind)

    # ------------------------------------------------------------------ client messages

    async def on_models(self, msg):
        try:
            models = (await client.arequest("models"))["models"]
        except client.ModelError as exc:
            await self._error(exc.code, exc.message, in_reply_to="models")
            return
        self._remember_models(models)
        await self.send_json(
            {"type": "models", "models": models, "default_model": settings.MODELWORKER["DEFAULT_MODEL"]}
        )

    async def on_start(self, msg):
        req = protocol.parse_start(msg)
        await self._cancel_task()
        await self._flush_usage(force=True)
        run = await database_sync_to_async(self._new_run)(req)
        self.run = run
        self.task = asyncio.create_task(self._begin(run))

    def _new_run(self, req: protocol.StartRequest) -> Run:
        user = self.scope.get("user")
        classroom, lesson, rules = policy.start(
            user, session=self.scope.get("session"), classroom_id=req.classroom_id, lesson_id=req.lesson_id
        )
        model = policy.check_model(rules, req.model)
        params = policy.playground_params(
            rules,
            temperature=req.temperature,
            top_p=req.top_p,
            top_k=req.top_k,
            context_window=req.context_window,
            max_tokens=req.max_tokens,
        )
        return Run(
            model=model,
            text=req.text,
            temperature=params["temperature"],
            top_k=params["top_k"],
            top_p=params["top_p"],
            greedy=req.greedy,
            seed=req.seed,
            speed_ms=req.speed_ms,
            context_window=params["context_window"],
            max_tokens=min(params["max_tokens"], self.limits["max_tokens"]),
            rules=rules,
            classroom_id=classroom.pk if classroom is not None else None,
            lesson_id=lesson.pk if lesson is not None else None,
            start_paused=req.paused,
            quota_left=policy.remaining_quota(rules, user),
            resume_tokens=req.resume_tokens,
        )

    async def on_pause(self, msg):
        run = self._require_run()
        if run.state == "finished":
            raise ProtocolError("not_playing", "There is nothing playing to pause.")
        await self._pause(run, "user")

    async def on_resume(self, msg):
        run = self._require_run()
        if run.state == "finished":
            raise ProtocolError("finished", _finished_message(run))
        if run.state == "starting":
            run.start_paused = False
            return
        run.state = "playing"
        run.wake.set()
        await self.send_json({"type": "resumed", "tokens": len(run.tokens)})

    async def on_step(self, msg):
        run = self._require_run()
        step = protocol.parse_step(msg)
        if len(run.pending) >= MAX_PENDING_STEPS:
            raise ProtocolError("busy", "Too many steps are waiting; wait for the tokens to arrive.")
        if run.state == "playing":
            await self._pause(run, "step")
        elif run.state == "starting":
            run.start_paused = True
        run.pending.append(step)
        run.wake.set()

    async def on_set_speed(self, msg):
        speed = protocol.speed(msg, default=-1)
        if speed == -1:
            raise ProtocolError("invalid_field", "set_speed needs speed_ms.", field="speed_ms")
        self.speed_ms = speed
        if self.run is not None:
            self.run.speed_ms = speed
            self.run.wake.set()
        await self.send_json({"type": "speed", "speed_ms": speed})

    async def on_regenerate(self, msg):
        run = self._require_run()
        await self._cancel_task()
        await self._flush_usage(force=True)
        fresh = run.fresh_copy()
        fresh.speed_ms = self.speed_ms if self.run is None else run.speed_ms
        self.run = fresh
        self.task = asyncio.create_task(self._begin(fresh))

    async def on_stop(self, msg):
        run = self._require_run()
        if run.state == "finished":
            await self._send_done(run)
            return
        run.epoch += 1
        run.pending.clear()
        await self._finish(run, "stopped")
        run.wake.set()

    async def on_tokenize(self, msg):
        text = msg.get("text")
        if not isinstance(text, str):
            raise ProtocolError("invalid_field", "tokenize needs text (a string).", field="text")
        if len(text) > self.limits["max_input_chars"]:
            raise ProtocolError(
                "invalid_field", f"text is longer than {self.limits['max_input_chars']} characters.", field="text"
            )
        model = msg.get("model") or settings.MODELWORKER["DEFAULT_MODEL"]
        if not isinstance(model, str):
            raise ProtocolError("invalid_field", "model must be a model id.", field="model")
        window = protocol._integer(msg, "context_window", self.limits["context_window"], 1)
        await self._require_ready(model)
        if text == "":
            ids, tokens = [], []
        else:
            result = await client.arequest("tokenize", model=model, text=text)
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
        title = protocol.parse_save(msg)
        user = self._require_user("save a run")
        run = self._require_run()
        if not run.prompt_ids:
            raise ProtocolError("not_started", "The run has not started yet; there is nothing to save.")
        saved = await database_sync_to_async(services.save_run)(user, run.snapshot(), title)
        run.run_id = str(saved.pk)
        await self.send_json({"type": "saved", "run_id": str(saved.pk), "title": saved.title, "tokens": len(run.tokens)})

    async def on_load(self, msg):
        run_id = protocol.parse_run_id(msg)
        user = self._require_user("load a saved run")
        run = await database_sync_to_async(self._loaded_run)(user, run_id)
        await self._cancel_task()
        await self._flush_usage(force=True)
        self.run = run
        self.task = asyncio.create_task(self._begin(run))

    def _loaded_run(self, user, run_id) -> Run:
        try:
            saved = services.get_run(user, run_id)
        except Exception as exc:  # the API's 404
            raise ProtocolError("not_found", f"Run {run_id} does not exist.") from exc
        # Continuing a saved run is held to the rules of its class, as for a start there.
        classroom, lesson, rules = policy.start(user, classroom_id=saved.classroom_id, lesson_id=saved.lesson_id)
        s = {**services.default_settings(), **saved.settings}
        run = Run(
            model=saved.model_name,
            text=saved.input_text,
            temperature=float(s.get("temperature") or 1.0),
            top_k=int(s.get("top_k") or 0),
            top_p=float(s.get("top_p") or 1.0),
            greedy=bool(s.get("greedy")),
            seed=s.get("seed"),
            speed_ms=int(s.get("speed_ms", self.speed_ms)),
            context_window=int(s["context_window"]),
            max_tokens=min(int(s["max_tokens"]), self.limits["max_tokens"]),
            rules=rules,
            classroom_id=classroom.pk if classroom is not None else None,
            lesson_id=lesson.pk if lesson is not None else None,
            run_id=str(saved.pk),
            start_paused=True,
            finished_reason=saved.finished_reason or None,
            quota_left=policy.remaining_quota(rules, user),
        )
        run.tokens = [dict(t) for t in saved.tokens]
        run.prompt_ids = list(saved.prompt_token_ids)
        return run

    # ------------------------------------------------------------------ the generation task

    async def _begin(self, run: Run):
        try:
            await self._require_ready(run.model)
            entry = self.model_entries.get(run.model, {})
            if entry.get("max_context"):
                run.context_window = min(run.context_window, int(entry["max_context"]))
            tokenized = await client.arequest("tokenize", model=run.model, text=run.text)
            if not run.prompt_ids:
                run.prompt_ids = tokenized["ids"]
            run.prompt_tokens = [{"token_id": i, "token": t} for i, t in zip(tokenized["ids"], tokenized["tokens"])]
            if not run.prompt_ids:
                raise ProtocolError("empty_input", "Type something to get started...")
            if run.resume_tokens:
                ids = [t["token_id"] for t in run.resume_tokens[: run.max_tokens]]
                texts = (await client.arequest("decode", model=run.model, ids=ids))["tokens"]
                run.tokens = [{**t, "token": text} for t, text in zip(run.resume_tokens, texts)]
                run.resume_tokens = []
            self.usage_rules, self.usage_model = run.rules, run.model
            await services.aregister_stream(self.stream_id, run.model)
            if run.finished_reason:
                run.state = "finished"
            else:
                run.state = "paused" if run.start_paused else "playing"
            await self.send_json(self._started_message(run))
            # Counted after the first token (see _emit): the usage row must not delay it.
            run.count_session = run.run_id is None and not run.tokens
            await self._loop(run)
        except asyncio.CancelledError:
            raise
        except ProtocolError as exc:
            await self._abandon(run, exc.code, exc.message, **exc.extra)
        except client.ModelError as exc:
            await self._abandon(run, exc.code, exc.message, **_jsonable(exc.extra))
        except Exception:  # noqa: BLE001
            log.exception("playground stream %s failed", self.stream_id)
            await self._abandon(run, "generation_failed", "Generation failed: the stream stopped unexpectedly.")

    async def _abandon(self, run: Run, code: str, message: str, **extra):
        """A start that could not begin: say why, and forget the run."""
        if self.run is run:
            if run.state == "starting":
                self.run = None
            else:
                run.state = "paused"
        await self._error(code, message, in_reply_to="start", **extra)

    async def _loop(self, run: Run):
        loop = asyncio.get_running_loop()
        while True:
            if run.pending:
                await self._do_step(run, run.pending.popleft())
                continue
            if run.state != "playing":
                run.wake.clear()
                await run.wake.wait()
                continue
            if len(run.tokens) >= run.max_tokens:
                await self._finish(run, "max_tokens")
                continue
            epoch = run.epoch
            result = await self._compute(run, len(run.tokens), None)
            # Pace on the server: the token is shown speed_ms after the previous one
            # (the step's own time counts towards it); a new speed applies at once.
            while result is not None and run.state == "playing" and run.epoch == epoch and not run.pending:
                delay = run.last_emit + run.speed_ms / 1000 - loop.time()
                if delay <= 0:
                    break
                run.wake.clear()
                try:
                    await asyncio.wait_for(run.wake.wait(), delay)
                except TimeoutError:
                    pass
            if result is None or run.state != "playing" or run.epoch != epoch or run.pending:
                continue  # paused, stopped or stepped meanwhile: this token is never shown
            await self._emit(run, result, "model", len(run.tokens))

    async def _do_step(self, run: Run, step: protocol.StepRequest):
        replacing = step.index is not None and step.index < len(run.tokens)
        if step.index is not None and step.index > len(run.tokens):
            await self._error(
                "invalid_field",
                f"index {step.index} is past the end: {len(run.tokens)} tokens so far.",
                in_reply_to="step",
                field="index",
            )
            return
        if run.state == "finished" and not replacing:
            await self._error("finished", _finished_message(run), in_reply_to="step")
            return
        if not replacing and len(run.tokens) >= run.max_tokens:
            await self._finish(run, "max_tokens")
            return
        index = step.index if replacing else len(run.tokens)
        result = await self._compute(run, index, step.token_id)
        if result is None:
            return
        if run.state == "finished":
            run.state, run.finished_reason = "paused", None
        del run.tokens[index:]
        await self._emit(run, result, "model" if step.token_id is None else "hand", index)

    async def _compute(self, run: Run, index: int, chosen_token_id: int | None) -> dict | None:
        """One step through the model worker, or None (the error is sent, the stream paused)."""
        if run.quota_left is not None and run.quota_left <= 0:
            await self._error(
                "quota_exceeded", "Daily token quota reached in this class. It resets at midnight UTC."
            )
            await self._pause(run, "quota")
            return None
        seed = None if run.seed is None else run.seed + index
        future = asyncio.ensure_future(
            client.anext_token(
                run.model,
                run.ids(index),
                temperature=run.temperature,
                top_k=run.top_k,
                top_p=run.top_p,
                context_window=run.context_window,
                chosen_token_id=chosen_token_id,
                greedy=run.greedy,
                seed=seed,
                top_n=10,
                cache_key=self.cache_key,
            )
        )
        self.inflight.add(future)
        future.add_done_callback(self.inflight.discard)
        try:
            # shield: a cancelled stream leaves the step to finish in the engine,
            # so disconnect() can wait for it before freeing the cache.
            return await asyncio.wait_for(asyncio.shield(future), self.limits["step_timeout_seconds"])
        except TimeoutError:
            seconds = self.limits["step_timeout_seconds"]
            await self._error("timeout", f"Request timed out: no token within {seconds:g} seconds. Paused.")
            await self._pause(run, "timeout")
        except client.ModelError as exc:
            await self._error(exc.code, exc.message, **_jsonable(exc.extra))
            await self._pause(run, "error")
        return None

    async def _emit(self, run: Run, result: dict, chosen_by: str, index: int):
        run.tokens.append(
            {
                "token_id": result["token_id"],
                "token": result["token_text"],
                "probability": result["probability"],
                "chosen_by": chosen_by,
                "probabilities": result["top"],
            }
        )
        run.last_emit = asyncio.get_running_loop().time()
        if run.quota_left is not None:
            run.quota_left -= 1
        self.usage_pending += 1
        await self.send_json(protocol.token_message(index, len(run.prompt_ids) + index, result, chosen_by))
        if run.count_session:
            run.count_session = False
            await self._count_session(run)
        if result["eos"]:
            await self._finish(run, "eos")
        elif len(run.tokens) >= run.max_tokens:
            await self._finish(run, "max_tokens")
        else:
            await self._flush_usage()

    async def _pause(self, run: Run, reason: str):
        run.epoch += 1
        if run.state in ("playing", "starting"):
            if run.state == "starting":
                run.start_paused = True
            else:
                run.state = "paused"
        run.wake.set()
        await self.send_json({"type": "paused", "reason": reason, "tokens": len(run.tokens)})

    async def _finish(self, run: Run, reason: str):
        run.state, run.finished_reason = "finished", reason
        await self._send_done(run)
        await self._flush_usage(force=True)

    async def _send_done(self, run: Run):
        await self.send_json({"type": "done", "reason": run.finished_reason, "tokens": len(run.tokens)})

    # ------------------------------------------------------------------ helpers

    def _started_message(self, run: Run) -> dict:
        return {
            "type": "started",
            "stream_id": self.stream_id,
            "run_id": run.run_id,
            "model": run.model,
            "text": run.text,
            "prompt_tokens": run.prompt_tokens,
            "prompt_length": len(run.prompt_ids),
            **run.settings(),
            "state": run.state,
            "finished_reason": run.finished_reason,
            "classroom_id": run.classroom_id,
            "quota_left": run.quota_left,
            "tokens": [
                {"index": i, "position": len(run.prompt_ids) + i, **t} for i, t in enumerate(run.tokens)
            ],
        }

    def _require_run(self) -> Run:
        if self.run is None:
            raise ProtocolError("not_started", "Nothing is running: send start first.")
        return self.run

    def _require_user(self, what: str):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            raise ProtocolError("not_signed_in", f"Sign in to {what}.")
        return user

    async def _require_ready(self, model: str):
        if model in self.ready_models:
            return
        models = (await client.arequest("models"))["models"]
        self._remember_models(models)
        problem = services.readiness_error(model, models)
        if problem is not None:
            raise ProtocolError(*problem, model=model)

    def _remember_models(self, models: list[dict]):
        """Ready models stay ready: later starts skip asking the worker again."""
        for m in models:
            if m.get("status") == services.READY:
                self.ready_models.add(m["id"])
                self.model_entries[m["id"]] = m

    async def _header_rules(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return policy.open_rules()

        def rules():
            classroom = policy.acting_classroom(self.scope.get("session"), user)
            return policy.rules_for(user, classroom)

        try:
            return await database_sync_to_async(rules)()
        except Exception:  # noqa: BLE001 - the drawer then shows the site's limits
            log.exception("could not read the class rules for the playground")
            return policy.open_rules()

    async def _cancel_task(self):
        task, self.task = self.task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _flush_usage(self, force: bool = False, quiet: bool = False):
        """Count generated tokens for usage review and class quotas, a batch at a time."""
        if not self.usage_pending or self.usage_rules is None:
            return
        if not force and self.usage_pending < USAGE_FLUSH_TOKENS and time.monotonic() - self.usage_flushed_at < USAGE_FLUSH_SECONDS:
            return
        n, self.usage_pending = self.usage_pending, 0
        self.usage_flushed_at = time.monotonic()
        try:
            await policy.acharge(self.usage_rules, self.scope.get("user"), self.usage_model, n, tool="playground")
        except policy.QuotaExceeded as exc:
            if self.run is not None:
                self.run.quota_left = 0
            if not quiet:
                await self._error(exc.code, exc.message)
                if self.run is not None and self.run.state == "playing":
                    await self._pause(self.run, "quota")
        except Exception:  # noqa: BLE001 - usage counting must not break a stream
            log.exception("could not record playground usage")

    async def _count_session(self, run: Run):
        """A run started, for the usage page."""
        try:
            await policy.acount(run.rules, self.scope.get("user"), run.model, tool="playground", sessions=1)
        except Exception:  # noqa: BLE001 - usage counting must not break a stream
            log.exception("could not record a playground run")

    async def _error(self, code: str, message: str, **extra):
        await self.send_json(protocol.error(code, message, **extra))


def _finished_message(run: Run) -> str:
    if run.finished_reason == "max_tokens":
        return f"✓ Reached max length ({run.max_tokens} tokens). Regenerate or modify the input to continue."
    if run.finished_reason == "eos":
        return "✓ Generation complete. Modify input to continue."
    return "The run was stopped. Regenerate or modify the input to continue."


def _jsonable(extra: dict) -> dict:
    return {k: v for k, v in extra.items() if isinstance(v, (str, int, float, bool, list, type(None)))}
