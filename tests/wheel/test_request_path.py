"""The wheel through the site's ASGI application, as daphne serves it: the
middleware chain runs as one sync call (tokenwheel_site/asgi_handler.py), and
every middleware still does its job."""

import json

import pytest
from asgiref.testing import ApplicationCommunicator

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def call(method, path, body=None, headers=()):
    from tokenwheel_site.asgi import application

    data = json.dumps(body).encode() if body is not None else b""
    heads = [(b"host", b"testserver"), *headers]
    if body is not None:
        heads += [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    scope = {"type": "http", "http_version": "1.1", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"", "scheme": "http", "headers": heads, "client": ("203.0.113.7", 50000)}
    talk = ApplicationCommunicator(application, scope)
    await talk.send_input({"type": "http.request", "body": data})
    start = await talk.receive_output(60)
    response = {"status": start["status"], "headers": {k.decode().lower(): v.decode() for k, v in start["headers"]}, "body": b""}
    while True:  # the body, in one message or streamed in several
        part = await talk.receive_output(60)
        response["body"] += part.get("body", b"")
        if not part.get("more_body"):
            await talk.wait(10)  # the application's own end: its close() after the last byte
            return response


async def test_a_wheel_step_goes_through_the_asgi_application(engine):
    created = await call("POST", "/api/sessions", {})
    assert created["status"] == 201, created["body"]
    sid = json.loads(created["body"])["session_id"]
    prompted = await call("POST", f"/api/sessions/{sid}/set-prompt", {"prompt": "Today in class we learned"})
    assert prompted["status"] == 200, prompted["body"]
    probs = await call("GET", f"/api/sessions/{sid}/next-token-probs")
    assert probs["status"] == 200
    token = json.loads(probs["body"])["above_threshold_tokens"][0]
    appended = await call("POST", f"/api/sessions/{sid}/append-token", {"token_id": token["token_id"]})
    assert appended["status"] == 200, appended["body"]
    assert json.loads(appended["body"])["appended_token"]["token_id"] == token["token_id"]


async def test_every_middleware_still_shapes_the_response():
    page = await call("GET", "/")
    assert page["status"] == 200
    headers = page["headers"]
    assert headers["x-frame-options"] == "DENY"  # clickjacking
    assert headers["x-content-type-options"] == "nosniff"  # security
    assert "content-security-policy" in headers  # the site's CSP
    assert "csrftoken=" in headers.get("set-cookie", "")  # CSRF (the page's forms)
    static = await call("GET", "/static/wheel/api.js")
    assert static["status"] == 200 and b"export" in static["body"]  # WhiteNoise


async def test_errors_and_throttles_answer_as_json_through_it(monkeypatch):
    from wheel.throttles import SessionRateThrottle

    missing = await call("GET", "/api/sessions/00000000-0000-4000-8000-000000000000")
    assert missing["status"] == 404
    assert json.loads(missing["body"])["error"] == "Session not found"
    monkeypatch.setattr(SessionRateThrottle, "THROTTLE_RATES", {"session": "1/min"})
    await call("GET", "/api/sessions/00000000-0000-4000-8000-000000000001")
    refused = await call("GET", "/api/sessions/00000000-0000-4000-8000-000000000001")
    assert refused["status"] == 429
    assert int(refused["headers"]["retry-after"]) > 0


async def test_a_request_starts_and_finishes_once_on_the_thread_that_served_it():
    """request_started and request_finished (which close the thread's database
    connection) fire once a request, on the thread that ran its view: a JSON
    answer and a streamed static file alike."""
    import threading

    from django.core import signals

    seen = []

    def started(**kwargs):
        seen.append(("started", threading.get_ident()))

    def finished(**kwargs):
        seen.append(("finished", threading.get_ident()))

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    try:
        for path in ("/api/sessions/00000000-0000-4000-8000-000000000000", "/static/wheel/api.js"):
            seen.clear()
            response = await call("GET", path)
            assert response["status"] in (200, 404) and response["body"]
            assert [event for event, _ in seen] == ["started", "finished"], (path, seen)
            if path.startswith("/api/"):
                assert seen[0][1] == seen[1][1] != threading.get_ident(), seen  # a request thread, not the event loop's
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)


async def test_requests_beyond_the_threads_wait_for_one_and_are_all_answered(settings):
    """With every request thread busy, the next requests queue (first come,
    first served) instead of failing: 12 at once through 2 threads."""
    import asyncio

    from tokenwheel_site.asgi_handler import OneHopASGIHandler

    settings.WEB_REQUEST_THREADS = 2
    handler = OneHopASGIHandler()
    assert handler.threads._max_workers == 2

    async def one(i):
        path = f"/api/sessions/00000000-0000-4000-8000-{i:012d}"
        scope = {"type": "http", "http_version": "1.1", "method": "GET", "path": path, "raw_path": path.encode(),
                 "query_string": b"", "scheme": "http", "headers": [(b"host", b"testserver")], "client": ("203.0.113.9", 50000 + i)}
        talk = ApplicationCommunicator(handler, scope)
        await talk.send_input({"type": "http.request", "body": b""})
        start = await talk.receive_output(30)
        body = await talk.receive_output(30)
        await talk.wait(10)
        return start["status"], json.loads(body["body"])["error"]

    answers = await asyncio.gather(*(one(i) for i in range(12)))
    assert answers == [(404, "Session not found")] * 12
    handler.threads.shutdown()
