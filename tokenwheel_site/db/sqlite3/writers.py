"""One queue of writers per SQLite file in this process.

SQLite lets one connection write at a time. A connection that finds the lock
taken does not wait in line: its busy handler sleeps and tries again, the
sleeps growing to 100 ms, so under a class's load the lock sat free while
the next writer slept (a fifth of the web process's samples were threads
sleeping in a statement) and writes came in no order. Here a writer first
takes a process-wide lock for its file, which wakes the next waiter the
moment it is released: a transaction (``BEGIN IMMEDIATE`` to ``COMMIT`` or
``ROLLBACK``) holds it throughout, a write outside a transaction for its one
statement. Reads never wait. Other processes (a management command) still
meet SQLite's own lock and busy timeout.
"""

import re
import threading

from django.db import OperationalError
from django.db.backends.sqlite3 import base

_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
_registry_lock = threading.Lock()
_locks = {}


def lock_for(path) -> threading.Lock:
    with _registry_lock:
        return _locks.setdefault(path, threading.Lock())


def acquire(lock, timeout: float):
    """Take ``lock`` within ``timeout`` (the busy timeout), or fail as SQLite
    would have ("database is locked": the API answers 503 busy)."""
    if not lock.acquire(timeout=timeout):
        raise OperationalError("database is locked")


class QueuedCursor(base.SQLiteCursorWrapper):
    """Django's SQLite cursor; a write outside a transaction waits in the
    queue (``writers``, set by the connection) for its statement."""

    writers = None
    timeout = 5.0

    def _queued(self, run, query, *args):
        if self.writers is None or self.connection.in_transaction or not _WRITE.match(query):
            return run(query, *args)
        acquire(self.writers, self.timeout)
        try:
            return run(query, *args)
        finally:
            self.writers.release()

    def execute(self, query, params=None):
        return self._queued(super().execute, query, params)

    def executemany(self, query, param_list):
        return self._queued(super().executemany, query, param_list)
