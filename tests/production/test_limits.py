"""Limits that hold under abuse: API throttles (which a forged
X-Forwarded-For does not reset) and the request body size."""

import uuid

import pytest

from .conftest import Stack, base_env, json_body


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
