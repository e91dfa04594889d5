"""Load shedding in the web process (tokenwheel_site/admission.py): when
requests would wait too long for the web process, a new API request is
answered at once with 503 busy and Retry-After, and changes nothing."""

import asyncio
import json
import threading

import pytest
from asgiref.testing import ApplicationCommunicator

from tokenwheel_site.admission import WINDOW_SECONDS, Admission


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_queue_is_refused_only_while_its_wait_passes_the_bound():
    clock = Clock()
    gate = Admission(max_wait=2.0, min_in_flight=4, clock=clock)
    for _ in range(3):
        gate.started()
    # Three slow requests are not a queue, whatever their pace.
    assert gate.refusal("/api/sessions") is None
    gate.started()
    # Four in the process and none finished in the window (read as one per
    # 2 s): about 8 s each, so come back in 8.
    refused = gate.refusal("/api/sessions/x/next-token-probs")
    assert refused is not None and refused.status == 503 and refused.code == "busy"
    assert refused.extra["retry_after"] == 8
    # Pages and static files are never refused.
    assert gate.refusal("/") is None and gate.refusal("/static/wheel/api.js") is None
    # Requests leaving at 100 a second: 4 in the process wait ~40 ms.
    for i in range(int(100 * WINDOW_SECONDS)):
        clock.now += 0.01
        gate.started()
        gate.finished()
    assert gate.expected_wait() == pytest.approx(0.04, rel=0.05)
    assert gate.refusal("/api/sessions") is None
    # 300 in the process at that pace would wait 3 s: refused, and told to come back in 3.
    for _ in range(296):
        gate.started()
    refused = gate.refusal("/api/sessions")
    assert refused is not None and refused.extra["retry_after"] == 3
    # Far behind, Retry-After stays short enough for a class to come back.
    for _ in range(2000):
        gate.started()
    assert gate.refusal("/api/sessions").extra["retry_after"] == 10
    assert Admission(max_wait=0, min_in_flight=1, clock=clock).refusal("/api/sessions") is None  # 0: off


def test_it_remembers_one_window_of_requests_however_long_it_serves():
    clock = Clock()
    gate = Admission(max_wait=2.0, min_in_flight=32, clock=clock)
    for _ in range(100_000):  # ~17 minutes at 100 requests a second, never busy
        clock.now += 0.01
        gate.started()
        gate.finished()
    assert len(gate._done) <= 100 * WINDOW_SECONDS + 1


def scope_for(method, path, i, headers=()):
    return {"type": "http", "http_version": "1.1", "method": method, "path": path, "raw_path": path.encode(),
            "query_string": b"", "scheme": "http", "client": ("203.0.113.5", 51000 + i),
            "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers]}


async def start(handler, method, path, i, body=b"", headers=()):
    talk = ApplicationCommunicator(handler, scope_for(method, path, i, headers))
    await talk.send_input({"type": "http.request", "body": body})
    return talk


async def answer(talk, timeout):
    head = await talk.receive_output(timeout)
    body = await talk.receive_output(timeout)
    await talk.wait(timeout)
    return head["status"], {k.decode().lower(): v.decode() for k, v in head["headers"]}, json.loads(body["body"] or b"null")


@pytest.mark.django_db(transaction=True)
async def test_behind_its_queue_the_process_refuses_new_api_requests_at_once(settings):
    """One request thread, held busy: two requests wait for it, a third API
    request is refused at once (503 busy, Retry-After, the API's error body)
    and creates nothing; a page still waits its turn; once the thread is
    free, everyone waiting is served and new requests are let in again."""
    from asgiref.sync import sync_to_async

    from tokenwheel_site.asgi_handler import OneHopASGIHandler
    from wheel.models import WheelSession

    settings.WEB_REQUEST_THREADS = 1
    settings.WEB_SHED_MIN_IN_FLIGHT = 2
    settings.WEB_MAX_WAIT_SECONDS = 0.5
    settings.CORS_ALLOWED_ORIGINS = ["https://school.example"]
    handler = OneHopASGIHandler()
    release = threading.Event()
    handler.threads.submit(release.wait, 30)  # the one thread is busy
    sessions_before = await sync_to_async(WheelSession.objects.count)()
    try:
        missing = "/api/sessions/00000000-0000-4000-8000-000000000000"
        waiting = [await start(handler, "GET", missing, i) for i in range(2)]
        await asyncio.sleep(0.2)
        assert handler.admission.in_flight == 2
        refused = await start(handler, "POST", "/api/sessions", 2, b"{}", [(b"origin", b"https://school.example")])
        status, headers, body = await answer(refused, 5)  # without a thread
        assert status == 503
        assert body["error"] == "Server busy" and "busy" in body["message"]
        assert headers["retry-after"] == "4"  # two in the process, none finished: ~4 s
        assert headers["content-type"] == "application/json"
        # An allowed origin's page can read the refusal (and wait it out).
        assert headers["access-control-allow-origin"] == "https://school.example"
        page = await start(handler, "GET", "/", 3)
        await asyncio.sleep(0.2)
        assert handler.admission.in_flight == 3  # the page waits in line
    finally:
        release.set()
    assert [(await answer(t, 30))[0] for t in waiting] == [404, 404]
    assert (await page.receive_output(30))["status"] == 200
    await page.wait(10)
    assert await sync_to_async(WheelSession.objects.count)() == sessions_before
    created = await answer(await start(handler, "POST", "/api/sessions", 4, b"{}"), 30)
    assert created[0] == 201, created
    handler.threads.shutdown()
