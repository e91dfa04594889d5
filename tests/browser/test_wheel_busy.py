"""The wheel page when the server is overloaded: a 503 with Retry-After (the
model's queue is full) makes the page say "Busy, retrying…", wait as long as
the server asks and try again, a few times, then show the server's error.

The server side of this (modelworker/engine/pacing.py: a request that would
queue longer than MAX_QUEUE_WAIT_SECONDS is refused with 503 and Retry-After)
is tested with the engine; the test server here is shared by every browser
test, so it cannot be pushed into overload for one test without making the
others fail. So the one request under test is answered with that 503 by
Playwright's router (its body and headers as the server sends them);
everything else, before and after, is the real server and model."""

import json
import time

import pytest
from playwright.sync_api import expect

from .site_tour import PROMPT, wheel_ready

pytestmark = pytest.mark.browser

BUSY_MESSAGE = "The model is busy (requests are waiting 3.2 s); try again in {s} s."


def busy(route, seconds):
    route.fulfill(
        status=503,
        headers={"Retry-After": str(seconds), "Content-Type": "application/json"},
        body=json.dumps({"error": "Server busy", "message": BUSY_MESSAGE.format(s=seconds)}),
    )


def start(page):
    page.goto("/")
    page.get_by_test_id("prompt-input").fill(PROMPT)
    page.get_by_test_id("prompt-submit").click()


def test_a_busy_answer_is_waited_out_and_the_wheel_still_appears(page):
    calls = []

    def probs(route):
        calls.append(time.monotonic())
        if len(calls) == 1:
            busy(route, 2)
        else:
            route.continue_()

    page.route("**/api/sessions/*/next-token-probs*", probs)
    start(page)
    status = page.get_by_test_id("busy-status")
    expect(status).to_contain_text("Busy, retrying…")
    expect(status).to_contain_text("trying again in 2 s (1 of 3)")
    expect(status).to_have_attribute("role", "status")  # screen readers hear it too
    wheel_ready(page)
    assert len(calls) == 2 and calls[1] - calls[0] >= 1.9, calls  # it waited as long as asked
    expect(status).to_be_empty()
    expect(status).to_be_hidden()
    for error in page.get_by_test_id("error").all():
        expect(error).to_be_empty()


def test_a_server_that_stays_busy_ends_in_its_error_after_three_retries(page, daphne_server):
    start(page)
    wheel_ready(page)
    calls = []

    def append(route):
        calls.append(time.monotonic())
        busy(route, 1)

    page.route("**/api/sessions/*/append-token", append)
    page.get_by_test_id("spin").click()
    status = page.get_by_test_id("busy-status")
    expect(status).to_contain_text("Busy, retrying…")
    error = page.locator('[data-testid="error"][data-for="wheel"]')
    expect(error).to_have_text("Server busy: " + BUSY_MESSAGE.format(s=1), timeout=20_000)
    assert len(calls) == 4, calls  # the first try and three more
    assert all(b - a >= 0.9 for a, b in zip(calls, calls[1:])), calls
    expect(status).to_be_empty()
    # Nothing was added, and the page works again once the server does.
    expect(page.get_by_test_id("history-token")).to_have_count(0)
    page.unroute("**/api/sessions/*/append-token")
    wheel_ready(page)
    page.get_by_test_id("spin").click()
    expect(page.get_by_test_id("history-token")).to_have_count(1)
    expect(error).to_be_empty()
