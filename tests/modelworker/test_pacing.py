"""When a forward starts and whether a request may queue: an idle model
never waits, a busy one waits briefly for company, and a queue that would
keep a request waiting seconds refuses it at once with 503 busy."""

import threading
import time

import pytest

from modelworker.engine.pacing import Pacing
from modelworker.errors import ModelError

from .fake_forward import fake_batcher
from .test_engine_batcher import held, in_threads, join, wait_until

CONFIG = {"BATCH_LINGER_MS": 15, "BATCH_WAIT_MS": 40, "MAX_QUEUE_WAIT_SECONDS": 3.0}


def test_an_idle_model_starts_a_lone_request_at_once():
    pacing = Pacing(CONFIG, batching=True)
    assert pacing.plan(1, 32) == (1, 0.0)
    pacing.forward_done(0.06, 0)
    pacing.arrived()
    assert pacing.plan(1, 32) == (1, 0.0)  # one arrival is no rate


def test_a_busy_model_waits_up_to_half_a_forward_for_the_requests_expected_meanwhile():
    pacing = Pacing(CONFIG, batching=True)
    for _ in range(20):  # a request every 2 ms: 500 a second
        pacing.arrived()
        time.sleep(0.002)
    pacing.forward_done(0.06, 0)
    rows, deadline = pacing.plan(3, 32)
    assert 3 + 5 <= rows <= 32  # ~15 expected in 30 ms, however slow the machine
    assert 0 < deadline - time.monotonic() <= 0.03
    slower = Pacing({**CONFIG, "BATCH_WAIT_MS": 10}, batching=True)
    slower.__dict__.update(_gap=pacing._gap, _last_arrival=pacing._last_arrival, last_forward=0.06)
    assert slower.plan(3, 32)[1] - time.monotonic() <= 0.01  # never beyond BATCH_WAIT_MS
    assert Pacing(CONFIG, batching=False).plan(3, 32) == (3, 0.0)


def test_a_model_that_went_quiet_is_not_busy_any_more():
    pacing = Pacing(CONFIG, batching=True)
    for _ in range(5):
        pacing.arrived()
    pacing.forward_done(0.06, 0)
    time.sleep(0.2)
    assert pacing.plan(1, 32) == (1, 0.0)


def test_a_request_is_refused_while_the_oldest_queued_one_has_waited_the_limit():
    pacing = Pacing(CONFIG, batching=True)
    pacing.admit(None)
    pacing.admit(time.monotonic() - 2.9)
    with pytest.raises(ModelError) as err:
        pacing.admit(time.monotonic() - 3.5)
    assert (err.value.code, err.value.status, err.value.extra["retry_after"]) == ("busy", 503, 4)
    assert err.value.http_body()["error"] == "Server busy"
    Pacing({**CONFIG, "MAX_QUEUE_WAIT_SECONDS": 0}, batching=True).admit(time.monotonic() - 60)


def test_a_full_queue_answers_busy_at_once_and_still_serves_what_it_holds():
    b = fake_batcher(MAX_QUEUE_WAIT_SECONDS=0.3)
    blocker = held(b)
    answers = []
    (queued,) = in_threads(lambda: answers.append(b.logits([5, 6])))
    assert wait_until(lambda: b._queue.qsize() == 1)
    time.sleep(0.35)
    started = time.monotonic()
    with pytest.raises(ModelError) as err:
        b.logits([7, 8])
    assert time.monotonic() - started < 0.1  # refused at once, not after a wait
    assert err.value.code == "busy" and err.value.extra["retry_after"] >= 1
    b.forward.release()
    join([blocker, queued])
    assert len(answers) == 1
    assert b.logits([7, 8]) is not None  # the queue drained: accepted again
    b.close()


def test_requests_arriving_steadily_share_fuller_forwards_when_the_batcher_waits_for_company():
    """A request every 25 ms, each forward 60 ms: started at once, a forward
    holds the ~2.3 that arrived during the last one; waiting up to half a
    forward for the one more expected, ~2.9."""

    def run(wait_ms):
        b = fake_batcher(BATCH_WAIT_MS=wait_ms, BATCH_LINGER_MS=0, MAX_QUEUE_WAIT_SECONDS=0)
        fake = b.forward

        def slow(steps):  # a forward that costs 60 ms, like a small model's step
            time.sleep(0.06)
            return fake(steps)

        b.forward = slow
        students = []
        for i in range(60):
            students += in_threads(lambda i=i: b.logits([i, 1, 2]))
            time.sleep(0.025)
        join(students)
        b.close()
        return sum(fake.rows) / len(fake.rows)

    assert run(200) > 1.1 * run(0)
