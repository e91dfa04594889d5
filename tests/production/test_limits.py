"""Limits that hold under abuse: API throttles (which a forged
X-Forwarded-For does not reset), the request body size, a per-user cap on
wheel sessions in use and on open websockets."""

import subprocess
import time
import uuid

import pytest

from .conftest import PYTHON, ROOT, Stack, base_env, cleanup_prefix, json_body
from .wsclient import Closed


@pytest.fixture
def throttled_server(services, prod_database, tmp_path):
    """Start a web process with the given limits (no model workers: none is needed)."""
    started = []

    def start(**limits):
        # No worker will ever answer here: give up on model requests quickly.
        env = base_env(prod_database, services["redis"], f"tw-limits-{uuid.uuid4().hex[:6]}:", MODELWORKER_LIVENESS="0.3", **limits)
        stack = Stack(env, tmp_path, "limits")
        started.append(stack)
        stack.start_daphne()
        return stack

    yield start
    for stack in started:
        stack.stop()
        cleanup_prefix(stack.env["REDIS_URL"], stack.env["REDIS_PREFIX"])


def test_an_anonymous_client_is_throttled_with_retry_after_and_a_forged_forwarded_for_does_not_help(throttled_server):
    server = throttled_server(THROTTLE_ANON="12/min")
    with server.client() as http:
        statuses = []
        for i in range(14):
            response = http.get(f"/api/sessions/{uuid.uuid4()}", headers={"X-Forwarded-For": f"10.0.0.{i}"})
            statuses.append(response.status_code)
        assert 429 in statuses, statuses
        first = statuses.index(429)
        assert first <= 12 and set(statuses[first:]) == {429}, statuses
        refused = http.get(f"/api/sessions/{uuid.uuid4()}")
        assert refused.status_code == 429
        body = json_body(refused)
        assert body["error"] == "Too many requests"
        assert int(refused.headers["Retry-After"]) > 0


def test_creating_sessions_has_a_budget_of_its_own_per_client(throttled_server):
    server = throttled_server(THROTTLE_ANON="1000/min", THROTTLE_CREATE="3/min")
    with server.client() as http:
        statuses = [http.post("/api/sessions", json={}).status_code for _ in range(5)]
        # Reading is not creating: still allowed.
        assert http.get(f"/api/sessions/{uuid.uuid4()}").status_code == 404
    # No model worker runs here, so the allowed creates answer 503; the 4th is refused before that.
    assert statuses[3:] == [429, 429], statuses


def test_a_body_over_256_kb_is_refused_with_a_json_error(stack):
    with stack.client() as http:
        session_id = stack.new_session(http)
        response = http.post(f"/api/sessions/{session_id}/set-prompt", json={"prompt": "a" * 300_000})
        assert response.status_code in (400, 413)
        assert json_body(response)["message"]
        fine = http.post(f"/api/sessions/{session_id}/set-prompt", json={"prompt": "a" * 1_000})
        assert fine.status_code == 200, fine.text


def _sessions_for(server, username, n):
    script = (
        "from django.contrib.auth import get_user_model\n"
        "from wheel.models import WheelSession\n"
        f"u = get_user_model().objects.get(username={username!r})\n"
        f"for _ in range({n}): WheelSession.objects.create(owner=u, model_name='smollm2-135m')\n"
    )
    done = subprocess.run([PYTHON, "manage.py", "shell", "-c", script], cwd=ROOT, env=server.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_signed_in_user_holds_a_capped_number_of_sessions_in_use(throttled_server):
    server = throttled_server(LIMIT_ACTIVE_SESSIONS_PER_USER="3")
    full, room = server.session_cookie("hoarder"), server.session_cookie("modest")
    _sessions_for(server, "hoarder", 3)
    _sessions_for(server, "modest", 2)
    csrf = {"csrftoken": "t" * 32}
    # Cookies on each client (httpx deprecates per-request cookies).
    with server.client(headers={"X-CSRFToken": "t" * 32}, cookies={**full, **csrf}) as http:
        refused = http.post("/api/sessions", json={})
        assert refused.status_code == 429, refused.text
        assert "at most 3" in json_body(refused)["message"]
    with server.client(headers={"X-CSRFToken": "t" * 32}, cookies={**room, **csrf}) as http:
        # Under the cap the request goes on to the model (no worker runs here: 503).
        assert http.post("/api/sessions", json={}).status_code == 503


def _hello_or_refusal(server, **kwargs):
    ws = server.websocket(**kwargs)
    first = ws.recv_json(timeout=10)
    if first["type"] == "error":
        with pytest.raises(Closed) as closed:
            ws.recv(timeout=10)
        assert closed.value.code == 4429
        ws.close()
        return first, None
    return first, ws


def test_open_websockets_are_capped_per_user_and_per_address(throttled_server):
    server = throttled_server(LIMIT_SOCKETS_PER_USER="2", LIMIT_SOCKETS_PER_ADDRESS="3")
    anonymous = [_hello_or_refusal(server) for _ in range(4)]
    assert [m["type"] for m, _ in anonymous] == ["hello", "hello", "hello", "error"]
    assert anonymous[3][0]["code"] == "too_many_sockets"
    anonymous[0][1].close()
    # The slot is free once the server has finished closing that socket.
    deadline = time.monotonic() + 15
    while (again := _hello_or_refusal(server))[0]["type"] != "hello":
        assert time.monotonic() < deadline, "a closed socket's slot was never given back"
        time.sleep(0.5)
    again[1].close()

    cookie = server.session_cookie("many-tabs")
    mine = [_hello_or_refusal(server, cookies=cookie) for _ in range(3)]
    assert [m["type"] for m, _ in mine] == ["hello", "hello", "error"]
    for _, socket in anonymous[1:3] + mine[:2]:
        socket.close()
