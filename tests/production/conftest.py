"""The production setup, for real: PostgreSQL, Redis, daphne and model workers
as separate processes, the way a school district runs Token Wheel.

Tests marked ``services`` use the PostgreSQL and Redis on this machine
(``DATABASE_TEST_URL``, ``REDIS_TEST_URL``; loopback defaults). When one is
not reachable they are skipped, except under ``REQUIRE_SERVICES=1`` (CI),
where that is a failure.

Isolation: the stack gets a throwaway PostgreSQL database (created here,
dropped at the end) and a Redis key prefix of its own; the Redis-outage test
starts a private redis-server on another port. The shared services are never
stopped or flushed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from .stack import (  # noqa: F401  (re-exported for the tests)
    active_events,
    DEFAULT_PG,
    DEFAULT_REDIS,
    MODEL,
    PYTHON,
    ROOT,
    Stack,
    base_env,
    cleanup_prefix,
    create_database,
    drop_database,
    free_port,
    json_body,
    pg_problem,
    redis_problem,
    start_stack,
    wait_until,
)


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here) and "no_services" not in item.keywords:
            item.add_marker(pytest.mark.services)


def pytest_configure(config):
    config.addinivalue_line("markers", "no_services: a production test that needs neither PostgreSQL nor Redis")


# --------------------------------------------------------------------------- services


@pytest.fixture(scope="session")
def services():
    """URLs of the machine's PostgreSQL and Redis, or skip (fail under REQUIRE_SERVICES=1)."""
    pg = os.environ.get("DATABASE_TEST_URL", DEFAULT_PG)
    rd = os.environ.get("REDIS_TEST_URL", DEFAULT_REDIS)
    problems = [p for p in (pg_problem(pg), redis_problem(rd)) if p]
    if problems:
        message = "; ".join(problems)
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"REQUIRE_SERVICES=1 but {message}", pytrace=False)
        pytest.skip(message)
    return {"postgres": pg, "redis": rd}


@pytest.fixture(scope="session")
def prod_database(services):
    """A throwaway PostgreSQL database, migrated; dropped at the end."""
    url = create_database(services["postgres"])
    yield url
    drop_database(services["postgres"], url)


# --------------------------------------------------------------------------- the stack


@pytest.fixture(scope="session")
def stack_env(services, prod_database):
    # A Redis prefix of its own: other runs on the same Redis never see our messages.
    return base_env(
        prod_database,
        services["redis"],
        f"tw-{uuid.uuid4().hex[:8]}:",
        # The classroom throttles are real but sized for one class; the abuse tests
        # lower them on a stack of their own where they need to.
        THROTTLE_ANON="100000/min",
        THROTTLE_USER="100000/min",
        THROTTLE_SESSION="100000/min",
        THROTTLE_CREATE="100000/min",
    )


@pytest.fixture(scope="session")
def stack(stack_env, tmp_path_factory):
    """daphne + two model workers on Redis, with PostgreSQL. Shared by the
    session: tests that kill workers put them back (``stack.ensure_workers()``)."""
    logdir = tmp_path_factory.mktemp("stack-logs")
    stack = start_stack(stack_env, logdir, "main", workers=2)
    yield stack
    stack.stop()
    cleanup_prefix(stack_env["REDIS_URL"], stack_env["REDIS_PREFIX"])


@pytest.fixture
def two_workers(stack):
    stack.ensure_workers(2)
    yield stack
    # Replace what the test killed; the next test that needs two waits for it.
    stack.ensure_workers(2, wait=False)


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of this test's own on a free port, which the test may stop and restart."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("REQUIRE_SERVICES=1 but redis-server is not installed")
        pytest.skip("redis-server is not installed")
    port = free_port()

    class PrivateRedis:
        url = f"redis://127.0.0.1:{port}/0"
        proc: subprocess.Popen | None = None

        def start(self):
            self.proc = subprocess.Popen(
                [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                 "--dir", str(tmp_path)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )
            wait_until(lambda: redis_problem(self.url) is None, 10, what="private redis up")

        def stop(self):
            if self.proc and self.proc.poll() is None:
                self.resume()
                self.proc.kill()
                self.proc.wait(5)

        def pause(self):
            """SIGSTOP: connections stay open and nothing answers (a stalled, swapping Redis)."""
            os.kill(self.proc.pid, signal.SIGSTOP)

        def resume(self):
            os.kill(self.proc.pid, signal.SIGCONT)

    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


