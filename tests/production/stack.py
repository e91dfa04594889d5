"""Process management for the production setup: a throwaway PostgreSQL
database, daphne and ``runworker model-worker`` processes on a Redis prefix of
their own. Used by the production tests (tests/production/conftest.py) and the
classroom load benchmark; no pytest here."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
DAPHNE = str(Path(sys.executable).with_name("daphne"))
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
MODEL = "smollm2-135m"


def _die_with_parent():
    """In the child: get SIGTERM when the process that started us dies, so a
    test run killed from outside leaves no daphne or worker behind (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # not ready yet
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout} s (last error: {last!r})")


def pg_problem(url: str) -> str | None:
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("select 1")
        return None
    except Exception as exc:
        return f"PostgreSQL at {url} is not reachable: {exc}"


def redis_problem(url: str) -> str | None:
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        return None
    except Exception as exc:
        return f"Redis at {url} is not reachable: {exc}"


def with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def create_database(admin_url: str, prefix: str = "tokenwheel_prod") -> str:
    """A new, migrated PostgreSQL database; its URL."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_db(admin_url, name)
    env = base_env(url, DEFAULT_REDIS, "migrate:")
    done = subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        drop_database(admin_url, url)
        raise RuntimeError(f"migrate failed:\n{done.stdout}\n{done.stderr}")
    return url


def drop_database(admin_url: str, url: str):
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def base_env(database_url: str, redis_url: str, prefix: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_SETTINGS", "DJANGO_ALLOW_ASYNC_UNSAFE"))}
    env.update(
        DJANGO_SETTINGS_MODULE="tokenwheel_site.settings",
        DJANGO_SECRET_KEY="prod-test-" + "k" * 60,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        REDIS_PREFIX=prefix,
        MODELWORKER_BACKEND="channels",
        MODELWORKER_TIMEOUT="20",
        # Two cores are shared by everything here: one torch thread per worker.
        TORCH_THREADS="1",
        OMP_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
        DEBUG="0",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Stack:
    """daphne + N ``runworker model-worker`` processes on one Redis prefix and one database."""

    def __init__(self, env: dict, logdir: Path, name: str):
        self.env = env
        self.logdir = logdir
        self.name = name
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.daphne: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self._logs: dict[int, Path] = {}
        self._count = 0

    # ---- processes

    def _spawn(self, args, label) -> subprocess.Popen:
        self._count += 1
        log = self.logdir / f"{self.name}-{label}-{self._count}.log"
        handle = open(log, "wb")
        proc = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
        handle.close()
        self._logs[proc.pid] = log
        return proc

    def start_daphne(self):
        self.daphne = self._spawn([DAPHNE, "-b", "127.0.0.1", "-p", str(self.port), "tokenwheel_site.asgi:application"], "daphne")
        wait_until(lambda: httpx.get(self.base_url + "/healthz", timeout=10).status_code in (200, 503), 60, what="daphne up")

    def start_worker(self, wait=True) -> subprocess.Popen:
        proc = self._spawn([PYTHON, "manage.py", "runworker", "model-worker"], "worker")
        self.workers.append(proc)
        if wait:
            self.wait_worker_ready(proc)
        return proc

    def wait_worker_ready(self, proc, timeout=120):
        def ready():
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited:\n{self.log(proc)}")
            return f"{MODEL}: ready in" in self.log(proc)

        wait_until(ready, timeout, interval=0.2, what=f"worker {proc.pid} ready")

    def log(self, proc) -> str:
        return self._logs[proc.pid].read_text(errors="replace")

    def kill(self, proc, sig=signal.SIGKILL):
        if proc.poll() is None:
            os.kill(proc.pid, sig)
            proc.wait(10)
        if proc in self.workers:
            self.workers.remove(proc)

    def live_workers(self):
        return [w for w in self.workers if w.poll() is None]

    def ensure_workers(self, n=2, wait=True):
        for proc in list(self.workers):
            if proc.poll() is not None:
                self.workers.remove(proc)
        for _ in range(n - len(self.workers)):
            self.start_worker(wait=False)
        if wait:
            for proc in self.workers:
                self.wait_worker_ready(proc)

    def stop(self):
        for proc in [*self.workers, self.daphne]:
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in [*self.workers, self.daphne]:
            if proc is not None:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(5)

    # ---- clients

    def session_cookie(self, username: str, staff: bool = False) -> dict:
        """A signed-in browser's cookie for a new user ``username`` (made in the stack's database)."""
        script = (
            "from django.contrib.auth import get_user_model, SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY\n"
            "from django.contrib.sessions.backends.db import SessionStore\n"
            f"u = get_user_model().objects.create_user({username!r}, password='pw-' + {username!r} * 3, is_staff={staff})\n"
            "s = SessionStore()\n"
            "s[SESSION_KEY] = str(u.pk)\n"
            "s[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
            "s[HASH_SESSION_KEY] = u.get_session_auth_hash()\n"
            "s.create()\n"
            "print(s.session_key)\n"
        )
        done = subprocess.run([PYTHON, "manage.py", "shell", "-c", script], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return {"sessionid": done.stdout.strip().splitlines()[-1]}

    def websocket(self, path="/ws/playground/", **kwargs):
        from .wsclient import WebSocket

        return WebSocket(self.ws_url + path, **kwargs)

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=kwargs.pop("timeout", 30), **kwargs)

    def new_session(self, client: httpx.Client, prompt: str = "The cat sat on the") -> str:
        created = client.post("/api/sessions", json={})
        assert created.status_code == 201, created.text
        session_id = created.json()["session_id"]
        if prompt is not None:
            done = client.post(f"/api/sessions/{session_id}/set-prompt", json={"prompt": prompt})
            assert done.status_code == 200, done.text
        return session_id


def start_stack(env, logdir, name, workers=2) -> Stack:
    stack = Stack(env, logdir, name)
    try:
        procs = [stack.start_worker(wait=False) for _ in range(workers)]
        stack.start_daphne()
        for proc in procs:
            stack.wait_worker_ready(proc)
    except Exception:
        stack.stop()
        raise
    return stack


def cleanup_prefix(redis_url, prefix):
    import redis

    try:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    except Exception:
        pass


def active_events(database_url, session_id, columns="position, token_id, token_text"):
    """The session's active token events as stored in PostgreSQL, in order."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        return conn.execute(
            f"select {columns} from wheel_tokenevent where session_id = %s and undone_at is null order by position",
            (session_id,),
        ).fetchall()


def json_body(response) -> dict:
    """The response's JSON body; fails with the raw text when it is not JSON."""
    assert response.headers.get("content-type", "").startswith("application/json"), (
        f"{response.status_code} {response.headers.get('content-type')}: {response.text[:300]}"
    )
    return json.loads(response.text)
