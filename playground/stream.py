"""A playground connection's generation: the run it plays and its playback
(playing, paused, finished; steps waiting; pacing), and every message that
playback sends.

It knows nothing of Channels nor of the model worker. It is given callables:

* ``send(message)``: one server message (a dict) to the client;
* ``next_token(run, index, chosen_token_id)``: one step of the model, an
  ``anext_token`` result for token ``index`` (``chosen_token_id``: a token
  chosen by hand, else the model samples); raises AppError;
* ``prepare(run)`` (optional): what must happen before a run plays, in the
  stream's own task (model checks, the prompt's tokens); raises AppError.

Generation runs as an asyncio task, so ``pause``, ``stop`` and a disconnect
are handled while a step is in flight. A run's usage is written through the
``meter`` given with it (``classrooms.metering.StreamMeter``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from common.errors import AppError

from . import protocol
from .run import Run

log = logging.getLogger("playground")

STARTING, PLAYING, PAUSED, FINISHED = "starting", "playing", "paused", "finished"


async def _nothing_to_prepare(run: Run) -> None:
    pass


class Stream:
    def __init__(
        self,
        send,
        next_token,
        *,
        prepare=_nothing_to_prepare,
        stream_id: str = "",
        step_timeout: float = 15.0,
        speed_ms: int = 500,
        max_pending_steps: int = 8,
    ):
        self.send = send
        self.next_token = next_token
        self.prepare = prepare
        self.stream_id = stream_id
        self.step_timeout = step_timeout
        self.speed_ms = speed_ms  # the connection's speed: set_speed before any run, and loaded runs without one
        self.max_pending_steps = max_pending_steps
        self.run: Run | None = None
        self.meter = None
        self.task: asyncio.Task | None = None
        self.inflight: set[asyncio.Future] = set()  # steps inside the model worker, even of replaced runs
        self._playback(paused=False)

    def _playback(self, paused: bool):
        self.state = STARTING
        self.start_paused = paused  # pause / step while starting: begin paused
        self.pending: deque[tuple[int | None, int | None]] = deque()  # steps asked for: (token_id, index)
        self.wake = asyncio.Event()
        self.epoch = 0  # bumped when playback is interrupted: an autoplay step in flight is dropped
        self.last_emit = 0.0
        self.count_run = False  # count the run for the usage page at its first token

    # ------------------------------------------------------------------ commands (each may raise AppError)

    async def halt(self):
        """Stop generating for the current run (a new one is about to replace it)."""
        await self._cancel_task()
        await self._write_usage(force=True)

    async def start(self, run: Run, *, paused: bool = False, meter=None):
        """Play ``run`` in place of the current one."""
        await self.halt()
        self.run, self.meter = run, meter
        self._playback(paused)
        self.task = asyncio.create_task(self._play(run))

    async def regenerate(self):
        run = self.require_run()
        await self.start(run.fresh_copy(), meter=self.meter)

    async def pause(self):
        run = self.require_run()
        if self.state == FINISHED:
            raise AppError("not_playing", "There is nothing playing to pause.", 409)
        await self._pause(run, "user")

    async def resume(self):
        run = self.require_run()
        if self.state == FINISHED:
            raise AppError("finished", run.finished_message(), 409)
        if self.state == STARTING:
            self.start_paused = False
            return
        self.state = PLAYING
        self.wake.set()
        await self.send({"type": "resumed", "tokens": len(run.tokens)})

    async def step(self, token_id: int | None = None, index: int | None = None):
        """One token now: the model's, or ``token_id`` chosen by hand (at
        ``index``, replacing it and what follows). Playback pauses first."""
        run = self.require_run()
        if len(self.pending) >= self.max_pending_steps:
            raise AppError("busy", "Too many steps are waiting; wait for the tokens to arrive.", 429)
        if self.state == PLAYING:
            await self._pause(run, "step")
        elif self.state == STARTING:
            self.start_paused = True
        self.pending.append((token_id, index))
        self.wake.set()

    async def set_speed(self, speed_ms: int):
        """Applies at once, to the token being waited for too."""
        self.speed_ms = speed_ms
        if self.run is not None:
            self.run.speed_ms = speed_ms
            self.wake.set()
        await self.send({"type": "speed", "speed_ms": speed_ms})

    async def stop(self):
        run = self.require_run()
        if self.state == FINISHED:
            await self._send_done(run)
            return
        self.epoch += 1
        self.pending.clear()
        await self._finish(run, "stopped")
        self.wake.set()

    async def close(self):
        """The connection is gone: stop at once, and wait for the steps already
        inside the model worker (the caller frees what they write to after)."""
        await self._cancel_task()
        if self.inflight:
            await asyncio.wait(list(self.inflight), timeout=self.step_timeout + 1)
        await self._write_usage(force=True, quiet=True)

    def require_run(self) -> Run:
        if self.run is None:
            raise AppError("not_started", "Nothing is running: send start first.", 409)
        return self.run

    # ------------------------------------------------------------------ the task

    async def _play(self, run: Run):
        try:
            await self.prepare(run)
            if not run.prompt_ids:
                raise AppError("empty_input", protocol.EMPTY_INPUT)
            if run.finished_reason:
                self.state = FINISHED
            else:
                self.state = PAUSED if self.start_paused else PLAYING
            await self.send(protocol.started_message(run, stream_id=self.stream_id, state=self.state))
            # Counted after the first token (see _emit): the usage row must not delay it.
            self.count_run = run.run_id is None and not run.tokens
            await self._loop(run)
        except asyncio.CancelledError:
            raise
        except AppError as exc:
            await self._abandon(run, exc)
        except Exception:  # noqa: BLE001 - a bug must not end the stream without a word
            log.exception("playground stream %s failed", self.stream_id)
            await self._abandon(run, AppError("generation_failed", "Generation failed: the stream stopped unexpectedly.", 500))

    async def _abandon(self, run: Run, exc: AppError):
        """A run that could not begin is forgotten; one that had begun stays, paused."""
        if self.run is run:
            if self.state == STARTING:
                self.run = None
            else:
                self.state = PAUSED
        await self.send(exc.ws_message(in_reply_to="start"))

    async def _loop(self, run: Run):
        loop = asyncio.get_running_loop()
        while True:
            if self.pending:
                await self._step(run, *self.pending.popleft())
                continue
            if self.state != PLAYING:
                self.wake.clear()
                await self.wake.wait()
                continue
            if len(run.tokens) >= run.max_tokens:
                await self._finish(run, "max_tokens")
                continue
            epoch = self.epoch
            result = await self._compute(run, len(run.tokens), None)
            # Paced on the server: the token is shown speed_ms after the previous one
            # (the step's own time counts towards it); a new speed applies at once.
            while result is not None and self._still_playing(epoch):
                delay = self.last_emit + run.speed_ms / 1000 - loop.time()
                if delay <= 0:
                    break
                self.wake.clear()
                try:
                    async with asyncio.timeout(delay):
                        await self.wake.wait()
                except TimeoutError:
                    pass
            if result is None or not self._still_playing(epoch):
                continue  # paused, stopped or stepped meanwhile: this token is never shown
            await self._emit(run, result, "model", len(run.tokens))

    def _still_playing(self, epoch: int) -> bool:
        return self.state == PLAYING and self.epoch == epoch and not self.pending

    async def _step(self, run: Run, token_id: int | None, index: int | None):
        replacing = index is not None and index < len(run.tokens)
        if index is not None and index > len(run.tokens):
            message = f"index {index} is past the end: {len(run.tokens)} tokens so far."
            await self.send(protocol.invalid("index", message).ws_message(in_reply_to="step"))
            return
        if self.state == FINISHED and not replacing:
            await self.send(AppError("finished", run.finished_message(), 409).ws_message(in_reply_to="step"))
            return
        if not replacing and len(run.tokens) >= run.max_tokens:
            await self._finish(run, "max_tokens")
            return
        index = index if replacing else len(run.tokens)
        result = await self._compute(run, index, token_id)
        if result is None:
            return
        if self.state == FINISHED:  # a finished run's token replaced by hand: it goes on from there
            self.state, run.finished_reason = PAUSED, None
        del run.tokens[index:]
        await self._emit(run, result, "model" if token_id is None else "hand", index)

    async def _compute(self, run: Run, index: int, chosen_token_id: int | None) -> dict | None:
        """One step of the model, or None (the error is sent and playback paused)."""
        if run.quota_left is not None and run.quota_left <= 0:
            await self.send(
                AppError("quota_exceeded", "Daily token quota reached in this class. It resets at midnight UTC.", 429).ws_message()
            )
            await self._pause(run, "quota")
            return None
        future = asyncio.ensure_future(self.next_token(run, index, chosen_token_id))
        self.inflight.add(future)
        future.add_done_callback(_settled)
        future.add_done_callback(self.inflight.discard)
        try:
            # shield: a cancelled stream leaves the step to finish in the model
            # worker, so close() can wait for it before its cache is freed.
            # (asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a
            # cancel that arrives as the step ends, and the stream never stops.)
            async with asyncio.timeout(self.step_timeout):
                return await asyncio.shield(future)
        except TimeoutError:
            message = f"Request timed out: no token within {self.step_timeout:g} seconds. Paused."
            await self.send(AppError("timeout", message, 504).ws_message())
            await self._pause(run, "timeout")
        except AppError as exc:
            await self.send(exc.ws_message())
            await self._pause(run, "error")
        return None

    async def _emit(self, run: Run, result: dict, chosen_by: str, index: int):
        run.add_token(result, chosen_by)
        self.last_emit = asyncio.get_running_loop().time()
        if run.quota_left is not None:
            run.quota_left -= 1
        await self.send(protocol.token_message(index, len(run.prompt_ids) + index, result, chosen_by))
        if self.count_run and self.meter is not None:
            self.count_run = False
            await self.meter.run_started()
        if result["eos"]:
            await self._finish(run, "eos", tokens=1)
        elif len(run.tokens) >= run.max_tokens:
            await self._finish(run, "max_tokens", tokens=1)
        else:
            await self._write_usage(tokens=1)

    async def _pause(self, run: Run, reason: str):
        self.epoch += 1
        if self.state == STARTING:
            self.start_paused = True
        elif self.state == PLAYING:
            self.state = PAUSED
        self.wake.set()
        await self.send({"type": "paused", "reason": reason, "tokens": len(run.tokens)})

    async def _finish(self, run: Run, reason: str, tokens: int = 0):
        """The run ends (``tokens``: the one just emitted, still to count)."""
        self.state, run.finished_reason = FINISHED, reason
        await self._send_done(run)
        await self._write_usage(tokens=tokens, force=True)

    async def _send_done(self, run: Run):
        await self.send({"type": "done", "reason": run.finished_reason, "tokens": len(run.tokens)})

    async def _write_usage(self, tokens: int = 0, force: bool = False, quiet: bool = False):
        """Count generated tokens; over the class's daily quota, say so and pause."""
        if self.meter is None:
            return
        try:
            await self.meter.tokens(tokens, force=force)
        except AppError as exc:  # the meter's QuotaExceeded
            if self.run is not None:
                self.run.quota_left = 0
            if not quiet:
                await self.send(exc.ws_message())
                if self.run is not None and self.state == PLAYING:
                    await self._pause(self.run, "quota")

    async def _cancel_task(self):
        task, self.task = self.task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass


def _settled(future: asyncio.Future) -> None:
    """A step nobody awaits any more (timed out, or its run replaced) must not
    log "exception was never retrieved"."""
    if not future.cancelled():
        future.exception()
