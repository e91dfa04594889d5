"""The channel layer production runs on: channels-redis, with the changes
a school's deployment needs (see :class:`RedisChannelLayer`). Settings name
it as ``modelworker.redis_layer.RedisChannelLayer``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref

log = logging.getLogger("modelworker")

try:  # the Redis layer is optional: tests and `make run` use the in-memory one
    from channels_redis.core import RedisChannelLayer as _RedisChannelLayer
    from channels_redis.utils import create_pool as _create_pool
    from redis.asyncio.retry import Retry as _AsyncRetry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as _RedisConnectionError
    from redis.exceptions import RedisError as _RedisError
except ImportError:  # pragma: no cover - channels-redis is a dependency
    _RedisChannelLayer = object
    _RedisError = _RedisConnectionError = OSError

# What a lost or refused Redis connection raises, wherever it surfaces.
BROKER_ERRORS = (_RedisError, OSError)


def stale_connection_retry(retry_class):
    """What redis-py should do when a pooled connection turns out dead.

    After Redis restarts, every connection a pool kept is closed on the
    server's side; the first command on each fails with "Connection closed by
    server". redis-py retries nothing when it is handed a pool (channels-redis
    and Django's cache both hand it one), so that request failed. One retry on
    a fresh connection fixes it; a few, with a short backoff, ride out a
    restart still in progress. Only ConnectionError: a timeout means Redis is
    alive but stalled, and retrying it would stretch a call far past the
    caller's deadline. Every command the layer sends is safe to repeat (ZADD
    of the same member, EXPIRE, counts) or lost either way (a pop).
    """
    return retry_class(ExponentialBackoff(cap=0.5, base=0.05), 3, supported_errors=(_RedisConnectionError,))


class RedisChannelLayer(_RedisChannelLayer):
    """channels-redis with five changes production needs.

    * Messages are popped plainly (at most once, as the channel-layer spec
      asks). channels-redis keeps every received message in a shared
      ``$inflight`` list and, before each receive, pushes that whole list back:
      with two model workers on ``model-worker`` it re-delivered messages the
      other worker had just taken (~15% of requests ran twice,
      django/channels_redis#163), and it costs four Redis round trips per
      message where one does.
    * ``send`` pipelines its four commands: two round trips instead of four.
    * ``receive()`` survives a Redis outage: it retries until Redis is back
      instead of raising, so ``runworker`` and websocket consumers do not die
      with it. Senders still see the error at once (and answer 503).
    * A pooled connection that Redis closed (a restart) is replaced on its
      first use instead of failing that request or losing that reply
      (:func:`stale_connection_retry`).
    * A receive on one of the process's own channels can be cancelled (a
      socket closing, a timeout) without losing a message or stalling the
      process's other receives (:meth:`_receive_local`).
    """

    RETRY_MAX_SECONDS = 2.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Per event loop: the queues of this process's channels, their readers
        # (one per Redis list), how many wait on each and when each was last used.
        self._local_by_loop: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def create_pool(self, index):
        host = {"retry": stale_connection_retry(_AsyncRetry), **self.hosts[index]}
        return _create_pool(host)

    async def _brpop_with_clean(self, index, channel, timeout):
        result = await self.connection(index).bzpopmin(channel, timeout=timeout)
        return None if result is None else result[1]

    async def _clean_receive_backup(self, index, channel):
        return None

    async def send(self, channel, message):
        from channels.exceptions import ChannelFull

        assert isinstance(message, dict), "message is not a dict"
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        assert "__asgi_channel__" not in message
        target = channel
        if "!" in channel:
            message = {**message, "__asgi_channel__": channel}
            target = self.non_local_name(channel)
            index = self.consistent_hash(channel)
        else:
            index = next(self._send_index_generator)
        key = self.prefix + target
        connection = self.connection(index)
        async with connection.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(key, min=0, max=int(time.time()) - int(self.expiry))
            pipe.zcount(key, "-inf", "+inf")
            _, queued = await pipe.execute()
        if queued >= self.get_capacity(channel):
            raise ChannelFull()
        async with connection.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {self.serialize(message): time.time()})
            pipe.expire(key, int(self.expiry))
            await pipe.execute()

    async def receive(self, channel):
        if "!" in channel:
            return await self._receive_local(channel)
        return await self._retrying(super().receive, channel)

    async def _retrying(self, receive, channel):
        delay = 0.1
        failing_since = None
        while True:
            try:
                message = await receive(channel)
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

    # ---- process-local channels: one reader per Redis list, never cancelled

    async def _receive_local(self, channel):
        """A message for one of this process's channels (a consumer's, a
        reply inbox). channels-redis lets whichever receiver holds its lock
        pop the process's shared list; one cancelled there (a socket that
        closes, a timeout) could lose a message meant for another channel
        or leave the lock held, and every receive after it waiting forever.
        Here one task per list and event loop pops and sorts into queues,
        and a receive only waits on its queue: cancelling it loses nothing."""
        local = self._local_state()
        queue = local["queues"].setdefault(channel, asyncio.Queue())
        real_channel = self.non_local_name(channel)
        if real_channel not in local["readers"]:
            local["readers"][real_channel] = asyncio.ensure_future(self._read_local(local, real_channel))
        local["waiting"][channel] = local["waiting"].get(channel, 0) + 1
        try:
            return await queue.get()
        finally:
            local["waiting"][channel] -= 1
            local["touched"][channel] = time.monotonic()

    def _local_state(self) -> dict:
        loop = asyncio.get_running_loop()
        if loop not in self._local_by_loop:
            self._local_by_loop[loop] = {"queues": {}, "readers": {}, "waiting": {}, "touched": {}, "swept": time.monotonic()}
        return self._local_by_loop[loop]

    async def _read_local(self, local, real_channel):
        while True:
            try:
                targets, message = await self._retrying(self.receive_single, real_channel)
            except Exception:  # never stop reading: every channel of this process would go silent
                log.exception("reading %s failed", real_channel)
                await asyncio.sleep(0.5)
                continue
            now = time.monotonic()
            for target in targets if isinstance(targets, list) else [targets]:
                local["queues"].setdefault(target, asyncio.Queue()).put_nowait(message)
                local["touched"][target] = now
            if now - local["swept"] > self.expiry:
                self._sweep(local, now)

    def _sweep(self, local, now):
        """Drop the queues of channels nobody has read for ``expiry`` seconds
        (a consumer that has ended): their messages would have expired in
        Redis by now."""
        local["swept"] = now
        for channel, touched in list(local["touched"].items()):
            if now - touched > self.expiry and not local["waiting"].get(channel):
                local["queues"].pop(channel, None)
                local["touched"].pop(channel, None)
                local["waiting"].pop(channel, None)
