"""Other front-ends on origins of their own (the seed's web client): a listed
origin may call /api/ without cookies; anything else gets no CORS headers."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db
CLIENT_ORIGIN = "https://wheel-client.school.example"


@pytest.fixture
def listed(settings):
    settings.CORS_ALLOWED_ORIGINS = [CLIENT_ORIGIN]


def preflight(path, origin, method="POST"):
    return Client().options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )


def cors_headers(response) -> dict:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


def test_a_listed_origins_preflight_and_request_pass_without_credentials(listed):
    answer = preflight("/api/sessions", CLIENT_ORIGIN)
    assert answer.status_code == 200
    assert answer["Access-Control-Allow-Origin"] == CLIENT_ORIGIN
    assert "POST" in answer["Access-Control-Allow-Methods"]
    assert "content-type" in answer["Access-Control-Allow-Headers"].lower()
    assert "Access-Control-Allow-Credentials" not in answer

    created = Client().post("/api/sessions", "{}", content_type="application/json", HTTP_ORIGIN=CLIENT_ORIGIN)
    assert created.status_code == 201
    assert created["Access-Control-Allow-Origin"] == CLIENT_ORIGIN
    assert "Access-Control-Allow-Credentials" not in created
    session_id = created.json()["session_id"]
    state = Client().get(f"/api/sessions/{session_id}", HTTP_ORIGIN=CLIENT_ORIGIN)
    assert state.status_code == 200 and state["Access-Control-Allow-Origin"] == CLIENT_ORIGIN


def test_an_unlisted_origin_gets_no_cors_headers(listed):
    assert cors_headers(preflight("/api/sessions", "https://evil.example")) == {}
    created = Client().post("/api/sessions", "{}", content_type="application/json", HTTP_ORIGIN="https://evil.example")
    assert created.status_code == 201 and cors_headers(created) == {}


def test_pages_outside_the_api_get_no_cors_headers_even_for_a_listed_origin(listed):
    assert cors_headers(Client().get("/accounts/login/", HTTP_ORIGIN=CLIENT_ORIGIN)) == {}
    assert cors_headers(preflight("/accounts/login/", CLIENT_ORIGIN)) == {}


def test_by_default_no_origin_is_allowed():
    answer = preflight("/api/sessions", CLIENT_ORIGIN)
    assert cors_headers(answer) == {}
    created = Client().post("/api/sessions", "{}", content_type="application/json", HTTP_ORIGIN=CLIENT_ORIGIN)
    assert cors_headers(created) == {}
