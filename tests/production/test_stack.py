"""The production setup end to end: a real daphne process and two
``runworker model-worker`` processes on Redis, with PostgreSQL."""

import json
import subprocess
import time
from pathlib import Path

from .conftest import MODEL, PYTHON, ROOT, active_events, json_body


def test_the_seeds_example_flow_runs_through_daphne_workers_redis_and_postgres(stack, stack_env):
    with stack.client() as http:
        models = json_body(http.get("/api/models"))["models"]
        assert {m["id"]: m["status"] for m in models}[MODEL] == "ready"

        session_id = stack.new_session(http, prompt=None)
        prompt = http.post(f"/api/sessions/{session_id}/set-prompt", json={"prompt": "The cat sat on the"})
        assert prompt.status_code == 200 and json_body(prompt)["token_count"] == 5

        probs = json_body(http.get(f"/api/sessions/{session_id}/next-token-probs", params={"threshold": 0.01}))
        assert probs["vocabulary_size"] == 49152
        top = probs["above_threshold_tokens"][0]
        assert probs["other_category"]["token_count"] > 40000

        picked = http.post(f"/api/sessions/{session_id}/append-token", json={"token_id": top["token_id"]})
        assert picked.status_code == 200, picked.text
        assert json_body(picked)["current_text"] == "The cat sat on the" + top["token_text"]

        other = json_body(http.post(f"/api/sessions/{session_id}/append-token", json={"category": "other"}))
        assert other["appended_token"]["category"] == "other"
        assert other["other_category_info"]["selected_token_rank"] >= 1

        undone = json_body(http.post(f"/api/sessions/{session_id}/undo"))
        assert undone["removed_token"]["token_id"] == other["appended_token"]["token_id"]

        state = json_body(http.get(f"/api/sessions/{session_id}"))
        assert [t["token_id"] for t in state["token_history"]] == [top["token_id"]]

    # The database holds what the API acknowledged.
    assert active_events(stack_env["DATABASE_URL"], session_id) == [(0, top["token_id"], top["token_text"])]

    with stack.client() as http:
        assert http.delete(f"/api/sessions/{session_id}").status_code == 200
        assert http.get(f"/api/sessions/{session_id}").status_code == 404


def test_the_web_process_never_loads_torch(stack):
    with stack.client() as http:
        session_id = stack.new_session(http)
        assert http.get(f"/api/sessions/{session_id}/next-token-probs").status_code == 200
        assert http.get("/healthz").status_code == 200
    maps = open(f"/proc/{stack.daphne.pid}/maps").read()
    assert "libtorch" not in maps
    for worker in stack.live_workers():
        assert "libtorch" in open(f"/proc/{worker.pid}/maps").read()


def test_driving_every_api_in_a_channels_backend_process_imports_no_torch(stack, stack_env):
    """The same check from inside: a process with MODELWORKER_BACKEND=channels
    runs the ASGI application, drives the wheel API and a playground websocket,
    and reports which modules it imported."""
    script = Path(__file__).with_name("drive_web_process.py")
    env = {**stack_env, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([PYTHON, str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(status < 300 for status in report["statuses"]), report["statuses"]
    assert report["heavy"] == [], f"a web process imported {report['heavy'][:3]}; the first import came from:\n{report['where'][0]}"
    if report["ws"]:
        assert report["ws"][-1] == "done", report["ws"]


def read_stream(ws, until=("done",), timeout=30):
    """Messages of a playground stream up to (and with) one whose type is in ``until``."""
    messages = []
    deadline = time.monotonic() + timeout
    while True:
        message = ws.recv_json(timeout=max(0.1, deadline - time.monotonic()))
        messages.append(message)
        if message["type"] in until:
            return messages


def test_a_playground_stream_runs_through_daphne_and_the_workers(stack):
    with stack.websocket() as ws:
        hello = ws.recv_json()
        assert hello["type"] == "hello"
        ws.send_json({"type": "start", "text": "The capital of France is", "max_tokens": 6, "speed_ms": 100, "seed": 1})
        messages = read_stream(ws, until=("done", "error"))
    tokens = [m for m in messages if m["type"] == "token"]
    assert messages[-1]["type"] == "done", messages[-1]
    assert [t["index"] for t in tokens] == list(range(len(tokens)))
    assert 1 <= len(tokens) <= 6
    assert all(len(t["probabilities"]) == 10 for t in tokens)
