"""Redis going away and coming back, on the real production stack (daphne +
two ``runworker model-worker`` processes + PostgreSQL + a private Redis this
test may stop, restart and pause)."""

import os
import signal
import threading
import time

from .conftest import base_env, json_body, start_stack, wait_until


def _next_models_answer(ws) -> dict:
    while True:
        message = ws.recv_json(timeout=30)
        if message["type"] in ("models", "error"):
            return message


def _models_over_a_new_socket(stack) -> tuple[list[str], list[dict]]:
    """A new socket's answers: the model list it gets on connecting, then one it asks for."""
    with stack.websocket() as ws:
        assert ws.recv_json()["type"] == "hello"
        on_connect = _next_models_answer(ws)
        ws.send_json({"type": "models"})
        asked = _next_models_answer(ws)
    return [on_connect["type"], asked["type"]], [on_connect, asked]


def _in_threads(stack, jobs):
    """Run ``jobs`` (callables taking an httpx client) at the same moment; their results in order."""
    results = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def run(i, job):
        with stack.client(timeout=40) as http:
            barrier.wait()
            results[i] = job(http)

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _timed(method, path, **kwargs):
    def job(http):
        started = time.monotonic()
        response = getattr(http, method)(path, **kwargs)
        return response.status_code, time.monotonic() - started, response.text[:200]

    return job


def test_after_redis_restarts_on_the_same_port_no_request_and_no_new_socket_fails(private_redis, prod_database, tmp_path):
    env = base_env(prod_database, private_redis.url, "restart:")
    stack = start_stack(env, tmp_path, "restart", workers=2)
    try:
        with stack.client(timeout=40) as http:
            sessions = [stack.new_session(http) for _ in range(6)]
        probs = [_timed("get", f"/api/sessions/{s}/next-token-probs") for s in sessions]
        # Concurrent requests, so every process's pools hold several connections,
        # all of which go stale when Redis restarts.
        assert all(r[0] == 200 for r in _in_threads(stack, probs + probs)), "the stack did not work before the restart"
        assert _models_over_a_new_socket(stack)[0] == ["models", "models"]

        private_redis.stop()
        private_redis.start()
        restarted_at = {proc.pid: len(stack.log(proc)) for proc in [stack.daphne, *stack.workers]}
        time.sleep(3)  # a quiet moment: nothing touches the stale connections

        results = _in_threads(stack, probs + [_timed("get", "/api/models")] * 4)
        with stack.client(timeout=40) as http:
            for session_id in sessions[:5]:
                results.append(_timed("post", f"/api/sessions/{session_id}/append-token", json={"category": "sample"})(http))
            for session_id in sessions[:5]:
                results.append(_timed("get", f"/api/sessions/{session_id}/next-token-probs")(http))
        sockets = [_models_over_a_new_socket(stack) for _ in range(5)]

        assert len(results) == 20
        failed = [r for r in results if r[0] != 200]
        assert not failed, f"{len(failed)} of 20 requests failed after the restart: {failed}"
        # A lost reply costs a liveness window and a resend: none may have been needed.
        assert max(r[1] for r in results) < 5, [round(r[1], 1) for r in results]
        assert [s[0] for s in sockets] == [["models", "models"]] * 5, sockets
        for proc in [stack.daphne, *stack.workers]:
            since = stack.log(proc)[restarted_at[proc.pid]:]
            assert "could not answer" not in since, since  # a worker's reply lost on a stale connection
            assert "Redis cache unreachable" not in since, since  # throttles silently skipped
    finally:
        stack.stop()


def test_with_redis_or_a_worker_paused_every_request_ends_by_the_model_timeout_with_a_clear_503(
    private_redis, prod_database, tmp_path
):
    timeout = 6
    env = base_env(prod_database, private_redis.url, "paused:", MODELWORKER_TIMEOUT=str(timeout))
    stack = start_stack(env, tmp_path, "paused", workers=1)
    try:
        with stack.client(timeout=60) as http, stack.websocket() as ws:
            assert ws.recv_json()["type"] == "hello"
            assert _next_models_answer(ws)["type"] == "models"
            session_id = stack.new_session(http)
            assert http.get(f"/api/sessions/{session_id}/next-token-probs").status_code == 200

            def answers(method, path, **kwargs):
                started = time.monotonic()
                response = getattr(http, method)(path, **kwargs)
                return response, time.monotonic() - started

            # Redis stalls: throttles wait on the cache, the request on the broker.
            private_redis.pause()
            try:
                for method, path, kwargs in [
                    ("get", f"/api/sessions/{session_id}/next-token-probs", {}),
                    ("post", f"/api/sessions/{session_id}/append-token", {"json": {"category": "sample"}}),
                    ("get", f"/api/sessions/{session_id}/next-token-probs", {}),
                ]:
                    response, took = answers(method, path, **kwargs)
                    assert response.status_code == 503, response.text
                    body = json_body(response)
                    assert body["error"] == "Model worker unavailable" and body["message"]
                    assert took < timeout + 0.75, f"{method} {path} took {took:.1f} s (timeout {timeout} s)"
                started = time.monotonic()
                ws.send_json({"type": "models"})
                message = _next_models_answer(ws)
                assert message["type"] == "error" and message["code"].startswith("worker_"), message
                assert time.monotonic() - started < timeout + 0.75
            finally:
                private_redis.resume()
            wait_until(lambda: answers("get", f"/api/sessions/{session_id}/next-token-probs")[0].status_code == 200, 30,
                       interval=0.5, what="the API answering again after Redis resumed")

            # The only worker stalls: no heartbeat, so the request gives up well before the timeout.
            worker = stack.live_workers()[0]
            os.kill(worker.pid, signal.SIGSTOP)
            try:
                response, took = answers("get", f"/api/sessions/{session_id}/next-token-probs")
            finally:
                os.kill(worker.pid, signal.SIGCONT)
            assert response.status_code == 503 and "worker" in json_body(response)["message"]
            assert took < timeout + 0.75
    finally:
        stack.stop()
