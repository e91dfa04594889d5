"""Django's SQLite backend with a pool of open connections.

Django keeps a database connection per thread and, with ``CONN_MAX_AGE = 0``,
closes it when the request ends. Under ASGI each request runs its sync code
on a thread of its own (asgiref's ``ThreadSensitiveContext``), so each
request opened a new SQLite connection: the file, Django's SQL functions
registered one by one, the PRAGMAs (WAL, busy timeout), and on close, when
it was the last one, a WAL checkpoint and the deletion of the WAL files.
Persistent connections (``CONN_MAX_AGE > 0``) cannot help: they live in the
thread, which is gone after the request.

Here closing a connection that holds no transaction puts the raw sqlite3
connection in a process-wide pool, and opening one takes it back: a request
pays a lock and a ``stat``. That is safe because Django opens SQLite
connections with ``check_same_thread=False`` and one thread at a time holds
a pooled connection. A connection is not pooled inside ``atomic`` or with
autocommit off (Django drops those too), and one to a file that has since
been deleted or replaced (a test database created again) is closed, not
reused. ``OPTIONS["pool_size"]`` (settings: ``SQLITE_POOL_SIZE``) caps the
idle connections kept per database; 0 turns the pool off.
"""

import atexit
import os
import re
import threading

from django.db.backends.sqlite3 import base, creation
from django.utils.asyncio import async_unsafe

from . import writers


class _Pool:
    def __init__(self):
        self.lock = threading.Lock()
        self.idle = {}  # database path -> [(file identity, sqlite3 connection), ...], most recent last

    def take(self, path, identity):
        stale = []
        with self.lock:
            entries = self.idle.get(path, [])
            while entries:
                seen, conn = entries.pop()
                if seen == identity:
                    break
                stale.append(conn)
            else:
                conn = None
        for old in stale:
            old.close()
        return conn

    def give(self, path, identity, conn, size) -> bool:
        with self.lock:
            entries = self.idle.setdefault(path, [])
            if len(entries) >= size:
                return False
            entries.append((identity, conn))
            return True

    def drain(self, path=None):
        with self.lock:
            if path is None:
                drained = [c for entries in self.idle.values() for _, c in entries]
                self.idle.clear()
            else:
                drained = [c for _, c in self.idle.pop(path, [])]
        for conn in drained:
            conn.close()

    def forget(self):
        """In a forked child: the parent's connections are not ours to use or close."""
        self.lock = threading.Lock()
        self.idle = {}


POOL = _Pool()
atexit.register(POOL.drain)
os.register_at_fork(after_in_child=POOL.forget)


def _identity(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class DatabaseCreation(creation.DatabaseCreation):
    # A test database is deleted and created again under the same name:
    # connections to the old file must not be handed out for the new one.
    def _create_test_db(self, verbosity, autoclobber, keepdb=False):
        POOL.drain(self._get_test_db_name())
        return super()._create_test_db(verbosity, autoclobber, keepdb)

    def _destroy_test_db(self, test_database_name, verbosity):
        POOL.drain(test_database_name)
        return super()._destroy_test_db(test_database_name, verbosity)


class DatabaseWrapper(base.DatabaseWrapper):
    creation_class = DatabaseCreation
    pool_size = 0
    _file_identity = None  # of the file the current connection has open
    _writers = None  # this file's queue of writers (writers.py); None: SQLite's own locking only
    _holds_writers = False

    def get_connection_params(self):
        params = super().get_connection_params()
        self.pool_size = int(params.pop("pool_size", 0))
        timeout = re.search(r"busy_timeout\s*=\s*(\d+)", " ".join(self.init_commands))
        self.busy_seconds = int(timeout.group(1)) / 1000 if timeout else params.get("timeout", 5.0)
        queue = self.transaction_mode in ("IMMEDIATE", "EXCLUSIVE") and not self.is_in_memory_db()
        self._writers = writers.lock_for(os.path.abspath(params["database"])) if queue else None
        return params

    def create_cursor(self, name=None):
        cursor = self.connection.cursor(factory=writers.QueuedCursor)
        cursor.writers, cursor.timeout = self._writers, self.busy_seconds
        return cursor

    def _start_transaction_under_autocommit(self):
        if self._writers is None:
            return super()._start_transaction_under_autocommit()
        writers.acquire(self._writers, self.busy_seconds)  # held until COMMIT or ROLLBACK
        self._holds_writers = True
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_writers()
            raise

    def _release_writers(self):
        if self._holds_writers:
            self._holds_writers = False
            self._writers.release()

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._release_writers()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._release_writers()

    def _pool_path(self, database):
        # Files only: an in-memory database lives and dies with its connection.
        if self.pool_size <= 0 or self.is_in_memory_db() or str(database).startswith("file:"):
            return None
        return os.path.abspath(database)

    @async_unsafe
    def get_new_connection(self, conn_params):
        path = self._pool_path(conn_params["database"])
        if path is None:
            return super().get_new_connection(conn_params)
        # One stat per request: under load every call that lets go of the GIL
        # (a stat, a statement) waits to get it back.
        identity = _identity(path)
        conn = POOL.take(path, identity)
        if conn is None:
            conn = super().get_new_connection(conn_params)
            identity = identity or _identity(path)  # the file may have just been created
        self._file_identity = identity
        self._constraints_off = False
        return conn

    def disable_constraint_checking(self):
        self._constraints_off = True  # not pooled until switched back on
        return super().disable_constraint_checking()

    def enable_constraint_checking(self):
        super().enable_constraint_checking()
        self._constraints_off = False

    def _close(self):
        self._release_writers()  # closed inside a transaction: SQLite rolls it back
        conn, path = self.connection, self._pool_path(self.settings_dict["NAME"])
        # Not inside atomic, not with autocommit off (Django drops those
        # connections too), not with foreign keys off. The file's identity is
        # the one it was opened with: take() drops it if the file has changed.
        pooled = not (self.in_atomic_block or not self.autocommit or getattr(self, "_constraints_off", False))
        if conn is not None and path is not None and self._file_identity is not None and pooled:
            try:
                if conn.in_transaction:
                    conn.rollback()
            except self.Database.Error:
                pass
            else:
                if POOL.give(path, self._file_identity, conn, self.pool_size):
                    return None
        return super()._close()
