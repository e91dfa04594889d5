"""SQLite as the site configures it: any SQLite (a ``sqlite://`` DATABASE_URL
too) holds up under concurrent writers, and connections are pooled across
requests without leaking one request's state into the next (issues 12, 13)."""

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.db.utils import ConnectionHandler

ROOT = Path(settings.BASE_DIR)

# What the wheel's append does: in a transaction, read the session's
# history, then write the new token. Eight clients at once, each on a
# connection of its own, through the site's settings and Django's atomic().
CONCURRENT_CLIENTS = """
import sys, threading, django
django.setup()
from django.db import connection, transaction
with connection.cursor() as c:
    c.execute("CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, client INTEGER, position INTEGER)")
connection.close()
errors, barrier = [], threading.Barrier(8)
def client(n):
    barrier.wait()
    try:
        for _ in range(25):
            with transaction.atomic():
                with connection.cursor() as c:
                    c.execute("SELECT COUNT(*) FROM events WHERE client = %s", [n])
                    position = c.fetchone()[0]
                    c.execute("INSERT INTO events (client, position) VALUES (%s, %s)", [n, position])
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        connection.close()
threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
with connection.cursor() as c:
    c.execute("SELECT COUNT(*) FROM events")
    rows = c.fetchone()[0]
print(f"rows={rows} errors={len(errors)} {errors[:3]}")
sys.exit(1 if errors else 0)
"""


def run_site(code, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SQLITE_PATH")}
    environ.update(DJANGO_SETTINGS_MODULE="tokenwheel_site.settings", **env)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120)


def test_eight_concurrent_writers_on_a_sqlite_database_url_all_succeed(tmp_path):
    done = run_site(CONCURRENT_CLIENTS, DATABASE_URL=f"sqlite:///{tmp_path / 'school.sqlite3'}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rows=200 errors=0" in done.stdout


def test_a_sqlite_database_url_gets_the_options_of_the_default_sqlite(tmp_path):
    show = "import django; django.setup(); from django.db import connection as c; c.ensure_connection(); " \
           "cur = c.cursor(); print(c.vendor, cur.execute('PRAGMA journal_mode').fetchone()[0], " \
           "cur.execute('PRAGMA busy_timeout').fetchone()[0], c.transaction_mode, type(c).__module__)"
    by_url = run_site(show, DATABASE_URL=f"sqlite:///{tmp_path / 'a.sqlite3'}")
    by_default = run_site(show, SQLITE_PATH=str(tmp_path / "b.sqlite3"))
    assert by_url.returncode == 0 and by_default.returncode == 0, by_url.stderr + by_default.stderr
    assert by_url.stdout == by_default.stdout
    assert by_url.stdout.split()[:4] == ["sqlite", "wal", "5000", "IMMEDIATE"]


@pytest.mark.django_db(transaction=True)
def test_a_write_that_cannot_get_the_database_lock_is_a_busy_503_with_retry_after(api):
    from django.db import connection

    path = connection.settings_dict["NAME"]
    with connection.cursor() as c:
        c.execute("PRAGMA busy_timeout = 200")  # this test's patience, not the site's 5 s
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        response = api.post("/api/sessions", {}, format="json")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        with connection.cursor() as c:
            c.execute("PRAGMA busy_timeout = 5000")
    assert response.status_code == 503, response.content
    assert response.json()["error"] == "Server busy"
    assert int(response["Retry-After"]) > 0
    assert api.post("/api/sessions", {}, format="json").status_code == 201


# --------------------------------------------------------------------------- the pool


@pytest.fixture
def database(tmp_path, django_db_blocker):
    """A file database with the site's SQLite settings; ``open()`` gives the
    calling thread its own connection, as a request's thread gets one."""
    config = {**settings.DATABASES["default"], "NAME": str(tmp_path / "pool.sqlite3"), "TEST": {}}
    handler = ConnectionHandler({"default": config})
    with django_db_blocker.unblock():
        first = handler["default"]
        with first.cursor() as c:
            c.execute("CREATE TABLE notes (text TEXT)")
        first.close()
        yield handler


def on_thread(fn):
    """Run ``fn`` on a new thread (a request of its own) and return its result."""
    out = {}
    thread = threading.Thread(target=lambda: out.update(value=fn()))
    thread.start()
    thread.join()
    return out["value"]


def request(handler, *statements):
    """A request: run statements on this thread's connection, then close it as Django does at the end."""
    conn = handler["default"]
    conn.ensure_connection()
    raw = conn.connection
    with conn.cursor() as c:
        rows = [c.execute(sql).fetchall() for sql in statements]
    conn.close()
    return raw, rows


def test_the_next_request_reuses_the_connection_the_last_one_closed(database):
    first, _ = on_thread(lambda: request(database, "SELECT 1"))
    second, _ = on_thread(lambda: request(database, "SELECT 1"))
    assert second is first


def test_requests_at_the_same_time_never_share_a_connection(database):
    held, both_open = [], threading.Barrier(2)

    def hold():
        conn = database["default"]
        conn.ensure_connection()
        held.append(conn.connection)
        both_open.wait()
        conn.close()

    threads = [threading.Thread(target=hold) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert held[0] is not held[1]


def test_a_transaction_left_open_is_rolled_back_before_the_connection_is_reused(database):
    on_thread(lambda: request(database, "BEGIN", "INSERT INTO notes VALUES ('half done')"))
    _, rows = on_thread(lambda: request(database, "SELECT COUNT(*) FROM notes", "INSERT INTO notes VALUES ('next')"))
    assert rows[0] == [(0,)]
    # And the next request's write is not stuck behind a lock.
    assert on_thread(lambda: request(database, "SELECT text FROM notes"))[1] == [[("next",)]]


def test_a_database_file_created_again_is_never_served_by_an_old_connection(database):
    path = database["default"].settings_dict["NAME"]
    on_thread(lambda: request(database, "INSERT INTO notes VALUES ('old file')"))
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)
    fresh = sqlite3.connect(path)
    fresh.executescript("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('new file');")
    fresh.close()
    assert on_thread(lambda: request(database, "SELECT text FROM notes"))[1] == [[("new file",)]]


def test_a_connection_left_with_foreign_keys_off_is_not_handed_on(database):
    def switch_off_and_leave():
        conn = database["default"]
        conn.ensure_connection()
        conn.disable_constraint_checking()  # as a migration does, then it fails before switching back
        conn.close()

    on_thread(switch_off_and_leave)
    assert on_thread(lambda: request(database, "PRAGMA foreign_keys"))[1] == [[(1,)]]


# --------------------------------------------------------------------------- the queue of writers


def _write_session():
    from wheel.models import WheelSession

    try:
        WheelSession.objects.create(model_name="smollm2-135m")
    finally:
        from django.db import connection

        connection.close()


def _timed(fn):
    import time

    started = time.monotonic()
    fn()
    return time.monotonic() - started


@pytest.mark.django_db(transaction=True)
def test_a_writer_whose_transaction_failed_lets_the_next_one_in_at_once():
    from django.db import connection, transaction

    from wheel.models import WheelSession

    def fail_midway():
        try:
            with transaction.atomic():
                WheelSession.objects.create(model_name="smollm2-135m")
                raise RuntimeError("the request failed")
        except RuntimeError:
            pass
        finally:
            connection.close()

    on_thread(fail_midway)
    assert on_thread(lambda: _timed(_write_session)) < 2.0  # the queue's timeout is 5 s
    assert WheelSession.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_connection_closed_inside_a_transaction_lets_the_next_writer_in():
    from django.db import connection, transaction

    from wheel.models import WheelSession

    def close_midway():
        with transaction.atomic():
            WheelSession.objects.create(model_name="smollm2-135m")
            connection.close()  # the request's thread gives up its connection mid-way

    on_thread(close_midway)
    assert on_thread(lambda: _timed(_write_session)) < 2.0
    assert WheelSession.objects.count() == 1  # the first write went with its transaction


@pytest.mark.django_db(transaction=True)
def test_writers_wait_in_line_behind_a_transaction_and_give_up_after_the_busy_timeout(api):
    from django.db import connection, transaction

    from wheel.models import WheelSession

    holding, release = threading.Event(), threading.Event()

    def hold():
        with transaction.atomic():
            WheelSession.objects.create(model_name="smollm2-135m")
            holding.set()
            release.wait(30)
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        holding.wait(30)
        connection.ensure_connection()
        connection.busy_seconds = 0.5  # this test's patience, not the site's 5 s
        refused = api.post("/api/sessions", {}, format="json")
    finally:
        release.set()
        holder.join(30)
    assert refused.status_code == 503
    assert int(refused["Retry-After"]) > 0
    assert api.post("/api/sessions", {}, format="json").status_code == 201
