"""The embedded default's backend: the engine in a child process (real
SmolLM2-135M there), many requests in flight on one pipe, errors carried
whole, and a child that dies or hangs costing a 503, never a hung request."""

import asyncio
import os
import signal
import threading
import time

import pytest

from modelworker.errors import ModelError
from modelworker.process_backend import ProcessBackend

MODEL = "smollm2-135m"

# ``make test-fast``: the module's children start on one worker (the one
# test that needs SmolLM2 in this process too goes with the real-model tests).
pytestmark = pytest.mark.xdist_group("process_backend")


@pytest.fixture(scope="module")
def backend():
    b = ProcessBackend(timeout=60)
    assert b.request("load", {"model": MODEL})["status"] == "ready"
    yield b
    b.close()


@pytest.mark.real_model
def test_the_child_answers_as_the_engine_in_this_process_would(backend, engine):
    ids = engine.handle("tokenize", {"model": MODEL, "text": "The cat sat on the"})["ids"]
    asked = {"model": MODEL, "ids": ids, "threshold": 0.02, "temperature": 0.8, "top_p": 1.0}
    there = backend.request("distribution", asked)
    here = engine.handle("distribution", asked)
    assert [t["token_id"] for t in there["above_threshold_tokens"]] == [t["token_id"] for t in here["above_threshold_tokens"]]
    for a, b in zip(there["above_threshold_tokens"], here["above_threshold_tokens"]):
        assert a["probability"] == pytest.approx(b["probability"], abs=1e-6)
    assert backend.process.pid != os.getpid()


def test_many_requests_in_flight_each_get_their_own_answer(backend):
    texts = [f"Student {i} wrote {'word ' * (i % 5)}here" for i in range(24)]
    got = {}

    def ask(text):
        got[text] = backend.request("tokenize", {"model": MODEL, "text": text})["ids"]

    threads = [threading.Thread(target=ask, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for text in texts:
        assert backend.request("decode", {"model": MODEL, "ids": got[text]})["text"] == text


def test_an_error_crosses_with_its_code_status_and_fields(backend):
    with pytest.raises(ModelError) as bad:
        backend.request("no_such_op", {})
    assert (bad.value.code, bad.value.status) == ("bad_request", 400)
    with pytest.raises(ModelError) as unknown:
        backend.request("tokenize", {"model": "no-such-model", "text": "hi"})
    assert unknown.value.status in (400, 404) and "no-such-model" in unknown.value.message


def test_async_callers_share_the_pipe(backend):
    async def main():
        return await asyncio.gather(*[backend.arequest("tokenize", {"model": MODEL, "text": f"n{i}"}) for i in range(5)])

    answers = asyncio.run(main())
    assert [backend.request("decode", {"model": MODEL, "ids": a["ids"]})["text"] for a in answers] == [f"n{i}" for i in range(5)]


def test_a_child_that_hangs_costs_a_503_within_the_deadline():
    b = ProcessBackend(timeout=60)
    try:
        b.request("models", {})
        os.kill(b.process.pid, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(ModelError) as late:
            b.request("models", {}, deadline=time.monotonic() + 1.0)
        assert late.value.status == 503 and late.value.code == "worker_timeout"
        assert time.monotonic() - started < 1.0 + ProcessBackend.BACKSTOP_SECONDS + 0.5
        os.kill(b.process.pid, signal.SIGCONT)
        assert "models" in b.request("models", {})  # the late answer went nowhere; the next is its own
    finally:
        os.kill(b.process.pid, signal.SIGCONT)
        b.close()


def test_a_child_that_dies_fails_its_requests_at_once_and_the_next_request_starts_a_new_one():
    b = ProcessBackend(timeout=60)
    try:
        b.request("models", {})
        first = b.process
        # A request in flight when the child dies: a load that waits for the model.
        outcome = []
        waiting = threading.Thread(target=lambda: _capture(outcome, b.request, "load", {"model": MODEL}))
        waiting.start()
        time.sleep(0.3)
        started = time.monotonic()
        first.kill()
        waiting.join(10)
        assert not waiting.is_alive() and time.monotonic() - started < 5
        if isinstance(outcome[0], ModelError):  # (the load may have won the race)
            assert (outcome[0].status, outcome[0].code) == (503, "model_unavailable")
        assert "models" in b.request("models", {})
        assert b.process is not first and b.process.is_alive()
    finally:
        b.close()


def test_closing_the_backend_ends_the_child():
    b = ProcessBackend(timeout=60)
    b.request("models", {})
    child = b.process
    b.close()
    # The backend's reply thread reaps the child too (its join), and a
    # waitpid that loses that race reads as "alive" until the winner has
    # recorded the exit code: look again until then.
    deadline = time.monotonic() + 10
    while child.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not child.is_alive()


def _capture(into, fn, *args):
    try:
        into.append(fn(*args))
    except ModelError as exc:
        into.append(exc)
