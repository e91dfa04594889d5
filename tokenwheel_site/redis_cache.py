"""Django's Redis cache, failing open while Redis is unreachable.

The cache holds throttle counters and short-lived stream state. When Redis
goes down, a plain RedisCache turns every throttled request into a 500; this
one logs once and answers as an empty cache (reads miss, writes are
dropped), so requests that do not need the model worker still work and those
that do get the model client's clear 503.

After a failure it leaves Redis alone for ``RETRY_AFTER_SECONDS``: a stalled
Redis (paused, swapping) otherwise cost every cache call its socket timeout,
six per throttled request, 12 s before the view even started. It reconnects
by itself, and a pooled connection that a Redis restart closed is replaced
on its first use (the same retry as the channel layer's).
"""

import functools
import logging
import threading
import time

from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError
from redis.retry import Retry

from modelworker.redis_layer import stale_connection_retry

log = logging.getLogger("tokenwheel.cache")

_MISS = object()


class _Outage:
    """Shared by every thread's cache object of a process (Django makes one per thread)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.until = 0.0  # time.monotonic() before which Redis is not asked
        self.last_warning = 0.0


_outages: dict[str, _Outage] = {}
_outages_lock = threading.Lock()


def _outage(location: str) -> _Outage:
    with _outages_lock:
        return _outages.setdefault(location, _Outage())


def _fail_open(fallback):
    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            outage = self._outage
            if time.monotonic() >= outage.until:
                try:
                    return method(self, *args, **kwargs)
                except (RedisError, OSError) as exc:
                    now = time.monotonic()
                    with outage.lock:
                        outage.until = now + self.RETRY_AFTER_SECONDS
                        warn = now - outage.last_warning > 10
                        if warn:
                            outage.last_warning = now
                    if warn:
                        log.warning("Redis cache unreachable (%s): throttles are not applied until it is back", exc)
            if fallback is _MISS:
                return kwargs.get("default", args[1] if len(args) > 1 else None)
            return fallback() if callable(fallback) else fallback

        return wrapper

    return decorate


class FailOpenRedisCache(RedisCache):
    RETRY_AFTER_SECONDS = 5.0

    def __init__(self, server, params):
        options = params.get("OPTIONS", {})
        params = {**params, "OPTIONS": {"retry": stale_connection_retry(Retry), **options}}
        super().__init__(server, params)
        self._outage = _outage(str(server))

    get = _fail_open(_MISS)(RedisCache.get)
    get_many = _fail_open(dict)(RedisCache.get_many)
    has_key = _fail_open(False)(RedisCache.has_key)
    set = _fail_open(None)(RedisCache.set)
    set_many = _fail_open(list)(RedisCache.set_many)
    add = _fail_open(True)(RedisCache.add)
    touch = _fail_open(False)(RedisCache.touch)
    delete = _fail_open(False)(RedisCache.delete)
    delete_many = _fail_open(None)(RedisCache.delete_many)
    clear = _fail_open(None)(RedisCache.clear)

    @_fail_open(None)
    def incr(self, key, delta=1, version=None):
        return super().incr(key, delta, version)
