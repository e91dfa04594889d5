"""Helpers for the benchmarks: a daphne server as a subprocess, machine load.

Every server listens on 127.0.0.1 on a free port, with its own SQLite file
(``SQLITE_PATH``), migrated before it starts, and throttling raised so the
rate limits do not take part in a measurement (``throttled=True`` keeps the
site's own limits, for a benchmark where they are part of what is measured).
``ProductionStack`` starts the production setup instead: daphne processes and
``runworker model-worker`` processes over Redis, on a throwaway PostgreSQL
database.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

# Rate limits far above anything a benchmark sends.
NO_THROTTLE = {
    "THROTTLE_ANON": "1000000/min",
    "THROTTLE_USER": "1000000/min",
    "THROTTLE_SESSION": "1000000/min",
    "THROTTLE_CREATE": "1000000/min",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine_load() -> dict:
    """Load averages and the processes (not ours) using the CPU right now."""
    import psutil

    ours = {os.getpid()}
    procs = []
    for p in psutil.process_iter(["pid", "name"]):
        try:
            p.cpu_percent(None)
            procs.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    time.sleep(1.0)
    busy = []
    for p in procs:
        try:
            pct = p.cpu_percent(None)
            if pct >= 10 and p.pid not in ours:
                busy.append({"pid": p.pid, "name": p.info["name"], "cpu_percent": round(pct)})
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    busy.sort(key=lambda b: -b["cpu_percent"])
    one, five, fifteen = os.getloadavg()
    return {
        "loadavg": [round(one, 2), round(five, 2), round(fifteen, 2)],
        "cpus": os.cpu_count(),
        "busy_processes": busy[:5],
    }


def wait_for_quiet(limit_s: float, max_busy_percent: float = 25.0) -> float:
    """Wait (at most ``limit_s``) until the machine is quiet: the CPUs less
    than ``max_busy_percent`` busy over 5 s (the load average lags by a
    minute, so it is not the test). Returns the seconds waited."""
    import psutil

    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        busy = psutil.cpu_percent(interval=5.0)
        if busy < max_busy_percent:
            break
        print(
            f"  waiting for a quiet machine (CPUs {busy:.0f}% busy, load average {os.getloadavg()[0]:.1f})...",
            flush=True,
        )
        time.sleep(10)
    return round(time.monotonic() - started, 1)


@contextlib.contextmanager
def exclusive(name: str = "tokenwheel-bench", limit_s: float = 1800.0):
    """Hold a machine-wide lock (a file lock in the temp directory) while
    measuring, so two benchmarks that use it never run at the same time.
    Waits up to ``limit_s`` for another holder, then goes on regardless."""
    import fcntl

    path = Path(tempfile.gettempdir()) / f"{name}.lock"
    with open(path, "w") as handle:
        started = time.monotonic()
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
                break
            except BlockingIOError:
                if time.monotonic() - started > limit_s:
                    locked = False
                    break
                print("  another benchmark holds the lock; waiting...", flush=True)
                time.sleep(10)
        try:
            yield locked
        finally:
            if locked:
                fcntl.flock(handle, fcntl.LOCK_UN)


def format_load(load: dict) -> str:
    busy = ", ".join(f"{b['name']}({b['pid']}) {b['cpu_percent']}%" for b in load["busy_processes"]) or "none"
    la = load["loadavg"]
    return f"load average {la[0]} / {la[1]} / {la[2]} on {load['cpus']} CPUs; busy processes: {busy}"


class Server:
    """``with Server("name", MODEL_BATCHING="0") as s: s.url``"""

    def __init__(
        self,
        name: str,
        workdir: Path,
        template_db: Path | None = None,
        ready_timeout: float = 180.0,
        throttled: bool = False,
        **env,
    ):
        self.name = name
        self.throttled = throttled
        self.workdir = Path(workdir)
        self.template_db = template_db
        self.ready_timeout = ready_timeout
        self.extra_env = {k: str(v) for k, v in env.items()}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_path = self.workdir / f"{name}.sqlite3"
        self.log_path = self.workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self._log = None

    def env(self) -> dict:
        env = dict(os.environ)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "tokenwheel_site.settings",
                "SQLITE_PATH": str(self.db_path),
                "DEBUG": "0",
                "MODEL_PRELOAD": "1",
                "MODELWORKER_LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
                **({} if self.throttled else NO_THROTTLE),
            }
        )
        # A REDIS_URL / DATABASE_URL in the caller's shell would change what is measured.
        env.pop("REDIS_URL", None)
        env.pop("DATABASE_URL", None)
        env.pop("MODELWORKER_BACKEND", None)
        if self.throttled:
            for name in NO_THROTTLE:
                env.pop(name, None)
        env.update(self.extra_env)
        return env

    def migrate(self):
        if self.template_db is not None and self.template_db.exists():
            shutil.copyfile(self.template_db, self.db_path)
            return
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=self.env(),
            check=True,
            timeout=300,
        )

    def start(self):
        self.migrate()
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(self.port), "tokenwheel_site.asgi:application"],
            cwd=ROOT,
            env=self.env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.wait_ready()
        return self

    def wait_ready(self):
        """Until /healthz says the default model is ready (bounded)."""
        deadline = time.monotonic() + self.ready_timeout
        last = None
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server {self.name} exited with {self.proc.returncode}; see {self.log_path}")
                try:
                    r = client.get(f"{self.url}/healthz")
                    last = r.text
                    data = r.json()
                    default = [m for m in data.get("models", []) if m["status"] in ("ready",)]
                    if r.status_code == 200 and any(m["id"] == self.default_model() for m in default):
                        return
                    if r.status_code == 503:
                        raise RuntimeError(f"server {self.name} is degraded: {last}")
                except (httpx.TransportError, ValueError):
                    pass
                time.sleep(0.2)
        raise RuntimeError(f"server {self.name} not ready within {self.ready_timeout} s (last /healthz: {last})")

    def default_model(self) -> str:
        return self.env().get("DEFAULT_MODEL", "smollm2-135m")

    def processes(self) -> list:
        """The server and its children (the embedded default's model process)."""
        import psutil

        main = psutil.Process(self.proc.pid)
        return [main, *main.children(recursive=True)]

    def rss_mb(self) -> float:
        return sum(p.memory_info().rss for p in self.processes()) / 2**20

    def anon_mb(self) -> float | None:
        """Private anonymous memory (RssAnon: the heap, caches, tensors) of the
        server and its children; the rest of the RSS is file-backed, chiefly
        the memory-mapped weights."""
        total = 0
        for process in self.processes():
            try:
                with open(f"/proc/{process.pid}/status") as status:
                    total += next(int(line.split()[1]) for line in status if line.startswith("RssAnon:"))
            except (OSError, StopIteration):
                return None
        return total / 1024

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server and its children have used so far."""
        return sum(self.cpu_by_role().values())

    def cpu_by_role(self) -> dict:
        """CPU seconds of the web process and of the model process."""
        main, *children = self.processes()
        return {"web": cpu_seconds_of([main]), "model": cpu_seconds_of(children)}

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="tokenwheel-bench-"))


class ProductionStack:
    """``daphnes`` daphne processes and ``workers`` ``runworker model-worker``
    processes on one Redis prefix, with a throwaway PostgreSQL database on
    the machine's services (as tests/production uses them). The site's own
    throttles apply unless ``NO_THROTTLE`` is passed in ``env``. ``urls``
    lists one base URL per daphne: a client spreads its users over them, as
    a proxy in front would."""

    def __init__(self, workdir: Path, daphnes: int = 2, workers: int = 2, name: str = "prod", **env):
        self.workdir = Path(workdir)
        self.name = name  # log files: <name>-web<i>-<process>-<n>.log
        self.daphnes = daphnes
        self.workers = workers
        self.extra_env = {k: str(v) for k, v in env.items()}
        self.stacks = []
        self.database_url = None
        self.env = None

    def start(self):
        sys.path.insert(0, str(ROOT))
        from tests.production.stack import (
            DEFAULT_PG,
            DEFAULT_REDIS,
            Stack,
            base_env,
            create_database,
            pg_problem,
            redis_problem,
            start_stack,
        )

        pg = os.environ.get("BENCH_POSTGRES", DEFAULT_PG)
        redis = os.environ.get("BENCH_REDIS", DEFAULT_REDIS)
        problem = pg_problem(pg) or redis_problem(redis)
        if problem:
            raise RuntimeError(f"the production stack needs PostgreSQL and Redis: {problem}")
        self.database_url = create_database(pg, prefix="tokenwheel_bench")
        prefix = f"tw-bench-{os.getpid()}-{int(time.time())}:"
        # (the workers log at INFO: start_stack waits for their "ready" line)
        self.env = base_env(self.database_url, redis, prefix, **self.extra_env)
        try:
            self.stacks.append(start_stack(self.env, self.workdir, f"{self.name}-web0", workers=self.workers))
            for i in range(1, self.daphnes):
                extra = Stack(self.env, self.workdir, f"{self.name}-web{i}")
                self.stacks.append(extra)
                extra.start_daphne()
        except Exception:
            self.stop()
            raise
        return self

    @property
    def urls(self) -> list[str]:
        return [s.base_url for s in self.stacks]

    def cpu_by_role(self) -> dict:
        """CPU seconds used so far by the web processes (daphne) and the model workers."""
        import psutil

        roles = {"web": [s.daphne for s in self.stacks], "workers": [w for s in self.stacks for w in s.workers]}
        used = {}
        for role, procs in roles.items():
            alive = []
            for proc in procs:
                try:
                    alive.append(psutil.Process(proc.pid))
                except (psutil.NoSuchProcess, AttributeError):
                    pass
            used[role] = cpu_seconds_of(alive)
        return used

    def cpu_seconds(self) -> float:
        return sum(self.cpu_by_role().values())

    def stop(self):
        from tests.production.stack import cleanup_prefix, drop_database

        for stack in self.stacks:
            stack.stop()
        if self.env is not None:
            cleanup_prefix(self.env["REDIS_URL"], self.env["REDIS_PREFIX"])
        if self.database_url is not None:
            pg = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
            drop_database(pg, self.database_url)
            self.database_url = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# --------------------------------------------------------------------------- profiles

# Where a server's time goes: a sampled stack counts for the first group
# (in this order) one of whose keys appears in any of its frames.
PROFILE_GROUPS = [
    ("model forward (torch)", ("forward (transformers/", "torch/nn/modules")),
    ("probability maths", ("modelworker/sampling", "modelworker/engine/ops", "sampling.py")),
    ("SQLite / ORM", ("sqlite3/base.py", "django/db/")),
    ("throttles", ("throttl",)),
    ("JSON and rendering", ("json", "renderers.py", "serializers")),
    ("Django / DRF request handling", ("django/", "rest_framework/")),
    ("daphne / twisted / asyncio", ("daphne/", "twisted/", "asyncio/", "asgiref/")),
]


def cpu_seconds_of(processes) -> float:
    """User + system CPU seconds of ``processes`` (psutil), those still running."""
    import psutil

    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def py_spy(pid: int, seconds: float, out: Path, gil: bool = False) -> subprocess.Popen:
    """Sample ``pid`` (all threads, without pausing it) for ``seconds``; collapsed
    stacks to ``out``. ``gil``: only the thread holding the GIL (Python's own CPU;
    torch's kernels run without it)."""
    return subprocess.Popen(
        [str(VENV_BIN / "py-spy"), "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "100", "--nonblocking", "--subprocesses",
         *(["--gil"] if gil else []), "-f", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


def profile_summary(path: Path, top: int = 25) -> dict:
    """Share of samples per group of PROFILE_GROUPS, and the functions with the most self time."""
    groups, leaves, total = {}, {}, 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        group = next((name for name, keys in PROFILE_GROUPS if any(k in f for f in frames for k in keys)), "other")
        groups[group] = groups.get(group, 0) + n
        leaf = re.sub(r":\d+\)$", ")", frames[-1])  # per function, not per line
        leaves[leaf] = leaves.get(leaf, 0) + n
    share = lambda n: round(100 * n / total, 1) if total else 0.0  # noqa: E731
    return {
        "samples": total,
        "groups_percent": {name: share(n) for name, n in sorted(groups.items(), key=lambda kv: -kv[1])},
        "top_self_percent": {f: share(n) for f, n in sorted(leaves.items(), key=lambda kv: -kv[1])[:top]},
    }
