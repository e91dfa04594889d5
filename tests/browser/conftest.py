"""Browser tests: a real daphne server, the real model, Debian's Chromium.

Shared by every page's browser tests (wheel, playground, classrooms). What
you get:

``daphne_server`` (the process lives for the whole test session)
    A ``daphne`` *subprocess* serving ``tokenwheel_site.asgi:application``
    on a free port of 127.0.0.1 (HTTP and websockets), with
    ``MODEL_PRELOAD=1``. The fixture returns once ``/healthz`` says the
    default model is ready, so tests never wait on a model load. It runs
    against the *test process's own test database* (file-backed SQLite,
    already migrated by pytest-django; or PostgreSQL when ``DATABASE_URL``
    is set), so a test can create rows with the ORM and see them in the
    browser, and read back what the browser did::

        @pytest.mark.browser
        def test_it_lists_my_runs(page, daphne_server, django_user_model):
            django_user_model.objects.create_user("ada", password="pw")  # committed: the server sees it
            ...

    ``daphne_server`` (and so ``page``) brings pytest-django's
    ``transactional_db``: rows are committed, not held in a test transaction
    the server cannot see (which would also lock SQLite against it), and every
    table is emptied after each test. Do not mix in ``django_db`` without
    ``transaction=True``.
    A subprocess, not a fork: torch's thread pools do not survive
    ``fork()``. Attributes: ``url``, ``port``, ``log_path``, ``db_name``,
    ``get_json(path)``, ``post_json(path, body)`` (plain HTTP, no browser),
    ``log_tail()``. The server's settings are ``tests/browser/server_settings.py``.

``browser`` (session)
    Playwright (sync API) driving Debian's Chromium (``/usr/bin/chromium``,
    or ``CHROMIUM_PATH``), headless. If Chromium is missing, every browser
    test *fails* saying how to install it; nothing is skipped.

``browser_context_args`` (function)
    Keyword arguments for ``browser.new_context``; override it in a module
    (e.g. ``{"reduced_motion": "reduce"}`` or a phone-sized viewport).

``new_context`` (function)
    A factory for extra, independent contexts (a second user, a teacher and
    a student), each with ``base_url`` set to the server. Closed after the test.

``page`` (function)
    A fresh page in a fresh context (own cookies), ``base_url`` set, so
    ``page.goto("/")`` works. An uncaught JavaScript error on the page fails
    the test (mark a test ``allow_page_errors`` to opt out). When a test
    fails, a screenshot goes to ``test-artifacts/<test>.png`` and the
    failure report names the server log.

Run: ``.venv/bin/pytest -m browser`` (or a file under ``tests/browser/``).
Environment: ``CHROMIUM_PATH`` (another Chromium), ``BROWSER_SERVER_TIMEOUT``
(seconds to wait for the model, default 180), ``BROWSER_EXPECT_TIMEOUT_MS``
(how long ``expect(...)`` waits, default 15000), ``HEADED=1`` (watch it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_page_errors: uncaught JavaScript errors do not fail this browser test")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the item so fixtures can tell a failed test.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# --------------------------------------------------------------------------- server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class DaphneServer:
    url: str
    port: int
    log_path: Path
    db_name: str
    process: subprocess.Popen

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def _call(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                return err.code, json.loads(raw)
            except ValueError:
                return err.code, raw.decode(errors="replace")

    def get_json(self, path: str):
        """``(status, body)`` of a GET straight to the server (no browser, no cookies)."""
        return self._call("GET", path)

    def post_json(self, path: str, body=None):
        return self._call("POST", path, {} if body is None else body)


def _database_env(settings_dict: dict) -> dict:
    """Point the server at the test database this process just created."""
    vendor = settings_dict["ENGINE"].rsplit(".", 1)[-1]
    name = str(settings_dict["NAME"])
    if vendor == "sqlite3":
        if name == ":memory:" or name.startswith("file:memorydb") or "mode=memory" in name:
            pytest.fail(
                "The browser tests need a file-backed SQLite test database (the server is another process); "
                f"DATABASES['default']['TEST']['NAME'] is {name!r}. Set SQLITE_TEST_PATH to a file."
            )
        return {"SQLITE_PATH": name, "DATABASE_URL": ""}
    if vendor in ("postgresql", "postgis"):
        from urllib.parse import quote

        user = quote(settings_dict.get("USER") or "")
        password = quote(settings_dict.get("PASSWORD") or "")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "localhost"
        port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
        return {"DATABASE_URL": f"postgres://{auth}{host}{port}/{name}"}
    pytest.fail(f"The browser-test server does not know how to reach a {vendor} test database.")


def _wait_until_ready(server: DaphneServer, model_id: str, timeout: float):
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"The daphne server exited (code {server.process.returncode}) before it was ready.\n"
                f"Server log ({server.log_path}):\n{server.log_tail()}"
            )
        try:
            status, body = server.get_json("/healthz")
            if isinstance(body, dict):
                models = {m["id"]: m for m in body.get("models", [])}
                model = models.get(model_id)
                if model and model["status"] == "ready":
                    return
                if model and model["status"] == "unavailable":
                    pytest.fail(f"The default model {model_id} is unavailable on the test server: {model.get('reason')}")
                last = f"HTTP {status}: {body}"
            else:
                last = f"HTTP {status}: {str(body)[:200]}"
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            last = repr(exc)
        time.sleep(0.25)
    pytest.fail(
        f"The daphne server was not ready within {timeout:.0f} s (last /healthz: {last}).\n"
        f"Server log ({server.log_path}):\n{server.log_tail()}"
    )


def _stop(process: subprocess.Popen):
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture(scope="session", autouse=True)
def _allow_orm_calls_beside_playwrights_loop():
    """Playwright's sync API runs an event loop in this thread; Django would then
    refuse ORM calls from tests ("You cannot call this from an async context").
    Only for the browser tests (which run last), never for the rest of the suite."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="session")
def _daphne_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """The server process, started once per test session (use ``daphne_server``)."""
    from django.conf import settings
    from django.db import connections

    with django_db_blocker.unblock():
        connection = connections["default"]
        settings_dict = dict(connection.settings_dict)
        test_name = connection.creation._get_test_db_name()
    if str(settings_dict["NAME"]) != str(test_name):
        # Never point a server that tests write through at the development database.
        pytest.fail(
            f"The test database was not set up (DATABASES NAME is {settings_dict['NAME']!r}, not {test_name!r}): "
            "request `daphne_server` (which needs `transactional_db`) rather than `_daphne_process`."
        )
    env = {
        **os.environ,
        **_database_env(settings_dict),
        "DJANGO_SETTINGS_MODULE": "tests.browser.server_settings",
        "MODEL_PRELOAD": "1",
        "PYTHONUNBUFFERED": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the server must keep Django's safety check
    if not env.get("DATABASE_URL"):
        env.pop("DATABASE_URL", None)
    model_id = settings.MODELWORKER["DEFAULT_MODEL"]
    timeout = float(os.environ.get("BROWSER_SERVER_TIMEOUT", "180"))
    log_dir = tmp_path_factory.mktemp("daphne")
    daphne = Path(sys.executable).with_name("daphne")
    command = [str(daphne)] if daphne.exists() else [sys.executable, "-m", "daphne"]

    server = None
    for attempt in range(3):  # another process may grab the port between probe and bind
        port = _free_port()
        log_path = log_dir / f"daphne-{port}.log"
        log = open(log_path, "wb")
        process = subprocess.Popen(
            [*command, "-b", "127.0.0.1", "-p", str(port), "tokenwheel_site.asgi:application"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in pytest does not hit it half-way; we stop it ourselves
        )
        log.close()
        server = DaphneServer(f"http://127.0.0.1:{port}", port, log_path, settings_dict["NAME"], process)
        time.sleep(0.5)
        if process.poll() is None or "Address already in use" not in server.log_tail():
            break
    try:
        _wait_until_ready(server, model_id, timeout)
        yield server
    finally:
        _stop(server.process)


@pytest.fixture
def daphne_server(transactional_db, _daphne_process):
    """The live server (see module doc). Function-scoped on purpose: it brings
    ``transactional_db``, so the test database exists, rows a test creates are
    committed where the server can read them, and every table is emptied after
    the test."""
    return _daphne_process


# --------------------------------------------------------------------------- browser


def chromium_path() -> str | None:
    for candidate in [os.environ.get("CHROMIUM_PATH"), *CHROMIUM_CANDIDATES, shutil.which("chromium")]:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def browser():
    executable = chromium_path()
    if executable is None:
        pytest.fail(
            "Chromium was not found, so the browser tests cannot run. Install Debian's Chromium "
            "(`apt-get install chromium`, or `bash scripts/ensure_chromium.sh`) or set CHROMIUM_PATH "
            "to a Chromium binary. Playwright's own browser download does not work offline.",
            pytrace=False,
        )
    from playwright.sync_api import expect, sync_playwright

    # The machine running the tests may be busy (a model on 2 shared cores):
    # give assertions more than Playwright's default 5 s before they fail.
    expect.set_options(timeout=float(os.environ.get("BROWSER_EXPECT_TIMEOUT_MS", "15000")))
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=executable,
            headless=os.environ.get("HEADED", "") not in ("1", "true"),
            args=CHROMIUM_ARGS,
        )
    except Exception as exc:
        playwright.stop()
        pytest.fail(f"Chromium at {executable} would not start: {exc}", pytrace=False)
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def browser_context_args():
    """Override in a test module to change the context (viewport, reduced_motion, ...)."""
    return {}


@pytest.fixture
def new_context(browser, daphne_server, browser_context_args):
    contexts = []

    def make(**overrides):
        options = {"viewport": {"width": 1280, "height": 900}, **browser_context_args, **overrides}
        context = browser.new_context(base_url=daphne_server.url, **options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context, daphne_server, request):
    context = new_context()
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(f"{exc}\n{getattr(exc, 'stack', '') or ''}".strip()))
    yield page

    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / f"{request.node.name}.png"
        try:
            page.screenshot(path=str(shot), full_page=True)
            print(f"\nScreenshot of the failed page: {shot}")
        except Exception as exc:  # the page may be gone; the report matters more
            print(f"\n(no screenshot: {exc})")
        print(f"Server log: {daphne_server.log_path}\n{daphne_server.log_tail(30)}")
    if page_errors and not request.node.get_closest_marker("allow_page_errors"):
        pytest.fail("Uncaught JavaScript error(s) on the page:\n" + "\n".join(page_errors), pytrace=False)
