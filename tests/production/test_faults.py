"""Faults a district will meet: a model worker killed under load, Redis going
away and coming back, two appends to one session at the same moment."""

import signal
import threading
import time

import psycopg

from .conftest import base_env, json_body, start_stack, wait_until


class Students:
    """``n`` threads, each on a session of its own, looping next-token-probs → spin."""

    def __init__(self, stack, n):
        self.stack = stack
        self.n = n
        self.results = []  # (finished_at, status, seconds, what, failure's body)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]

    def _record(self, what, response, started):
        with self.lock:
            # A failure keeps its body: which error (worker_timeout, busy...) tells the cause.
            body = response.text[:300] if response.status_code != 200 else ""
            self.results.append((time.monotonic(), response.status_code, time.monotonic() - started, what, body))

    def _run(self):
        with self.stack.client(timeout=40) as http:
            session_id = self.stack.new_session(http, prompt="Once upon a time, in a small village,")
            while not self.stop.is_set():
                started = time.monotonic()
                self._record("probs", http.get(f"/api/sessions/{session_id}/next-token-probs"), started)
                started = time.monotonic()
                self._record("append", http.post(f"/api/sessions/{session_id}/append-token", json={"category": "sample"}), started)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(60)


def test_killing_one_of_two_workers_under_load_loses_no_request(two_workers):
    stack = two_workers
    with Students(stack, 8) as students:
        time.sleep(3)
        victim = stack.live_workers()[0]
        killed_at = time.monotonic()
        stack.kill(victim, signal.SIGKILL)
        time.sleep(5)
    results = students.results
    failures = [r for r in results if r[1] != 200]
    after = [r for r in results if r[0] > killed_at + 3]
    assert not failures, f"{len(failures)} of {len(results)} requests failed: {failures[:5]}"
    assert len(after) >= 10, "the surviving worker stopped answering"
    # A request the dead worker held waits one liveness window (2 s), then goes to the other.
    assert max(r[2] for r in results) < 10


def test_two_appends_at_the_same_moment_both_land_in_order_or_one_is_refused(stack, stack_env):
    with stack.client() as a, stack.client() as b:
        session_id = stack.new_session(a, prompt="One, two, three,")
        outcomes = []
        for _ in range(8):
            barrier = threading.Barrier(2)
            got = {}

            def append(name, http):
                barrier.wait()
                got[name] = http.post(f"/api/sessions/{session_id}/append-token", json={"category": "sample"})

            threads = [threading.Thread(target=append, args=(n, h)) for n, h in (("a", a), ("b", b))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            for response in got.values():
                assert response.status_code in (200, 409), response.text
                body = json_body(response)
                if response.status_code == 409:
                    assert body["error"] and body["message"]
            outcomes.append(sorted(r.status_code for r in got.values()))
        state = json_body(a.get(f"/api/sessions/{session_id}"))

    landed = sum(o.count(200) for o in outcomes)
    assert all(200 in o for o in outcomes), f"a round where both were refused: {outcomes}"
    history = state["token_history"]
    assert len(history) == landed
    assert [t["position"] for t in history] == list(range(landed))
    with psycopg.connect(stack_env["DATABASE_URL"]) as conn:
        rows = conn.execute(
            "select position, token_id from wheel_tokenevent where session_id = %s and undone_at is null order by position",
            (session_id,),
        ).fetchall()
    assert rows == [(t["position"], t["token_id"]) for t in history]
    assert state["current_text"].startswith("One, two, three,")


def test_with_redis_down_the_api_answers_503_and_recovers_when_it_is_back(private_redis, prod_database, tmp_path):
    env = base_env(prod_database, private_redis.url, "outage:", MODELWORKER_TIMEOUT="10")
    stack = start_stack(env, tmp_path, "outage", workers=1)
    try:
        with stack.client(timeout=30) as http:
            session_id = stack.new_session(http)
            assert http.get(f"/api/sessions/{session_id}/next-token-probs").status_code == 200

            private_redis.stop()
            started = time.monotonic()
            down = http.get(f"/api/sessions/{session_id}/next-token-probs")
            assert down.status_code == 503, down.text
            body = json_body(down)
            assert body["error"] == "Model worker unavailable"
            assert "Redis" in body["message"]
            assert time.monotonic() - started < 8
            assert http.post("/api/sessions", json={}).status_code == 503
            # What needs only the database still works.
            assert http.get(f"/api/sessions/{session_id}").status_code == 200

            private_redis.start()
            wait_until(
                lambda: http.get(f"/api/sessions/{session_id}/next-token-probs").status_code == 200,
                30, interval=0.5, what="the API answering again after Redis came back",
            )
            assert http.post(f"/api/sessions/{session_id}/append-token", json={"category": "sample"}).status_code == 200
        assert stack.live_workers(), "the model worker died with Redis instead of waiting for it"
    finally:
        stack.stop()


def _start_stream(stack, cookies=None, max_tokens=60):
    ws = stack.websocket(cookies=cookies)
    assert ws.recv_json()["type"] == "hello"
    ws.send_json({"type": "start", "text": "Once upon a time there was", "max_tokens": max_tokens, "speed_ms": 100, "seed": 7})
    return ws


def _tokens_until(ws, n, timeout=30):
    tokens = []
    deadline = time.monotonic() + timeout
    while len(tokens) < n:
        message = ws.recv_json(timeout=max(0.1, deadline - time.monotonic()))
        assert message["type"] not in ("error", "done"), message
        if message["type"] == "token":
            tokens.append(message)
    return tokens


def test_killing_one_of_two_workers_mid_stream_does_not_interrupt_the_stream(two_workers):
    stack = two_workers
    with _start_stream(stack, max_tokens=25) as ws:
        tokens = _tokens_until(ws, 3)
        stack.kill(stack.live_workers()[0])
        while True:
            message = ws.recv_json(timeout=15)
            assert message["type"] != "error", message
            if message["type"] == "token":
                tokens.append(message)
            if message["type"] == "done":
                break
    assert [t["index"] for t in tokens] == list(range(25))


def test_when_the_last_worker_dies_mid_stream_the_client_hears_within_5_seconds_and_saves_what_it_got(two_workers, stack_env):
    stack = two_workers
    cookies = stack.session_cookie("streamer")
    with _start_stream(stack, cookies=cookies) as ws:
        tokens = _tokens_until(ws, 4)
        killed_at = time.monotonic()
        for worker in stack.live_workers():
            stack.kill(worker)
        while True:
            message = ws.recv_json(timeout=10)
            if message["type"] == "token":
                tokens.append(message)  # a step the dead workers finished before dying
            if message["type"] == "error":
                break
        assert time.monotonic() - killed_at < 5, "the error came too late"
        assert message["message"]
        ws.send_json({"type": "save", "title": "interrupted"})
        while (saved := ws.recv_json(timeout=10))["type"] != "saved":
            assert saved["type"] != "error", saved
    assert saved["tokens"] == len(tokens)
    with psycopg.connect(stack_env["DATABASE_URL"]) as conn:
        (stored,) = conn.execute("select tokens from playground_playgroundrun where id = %s", (saved["run_id"],)).fetchone()
    assert [t["token_id"] for t in stored] == [t["token_id"] for t in tokens]
