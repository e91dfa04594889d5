"""Prefetch: the wheel's next step computed before it is asked for. A request
for it then finds it ready, or waits for the forward already running, and
never queues a second row."""

import time

import pytest

from modelworker.engine.batch_maths import Question

from .fake_forward import fake_batcher, logits_of
from .test_engine_batcher import held, in_threads, join, wait_until


@pytest.fixture
def batcher():
    b = fake_batcher(PREFETCH_ENTRIES=8)
    yield b
    b.close()


def test_a_prefetched_sequence_is_answered_without_another_forward(batcher):
    batcher.logits([1, 2, 3], cache_key="s")
    assert batcher.prefetch([1, 2, 3, 4], cache_key="s")
    assert wait_until(lambda: batcher.forward_count == 2)
    batcher.logits_cache.clear()  # the class's other requests flushed the LRU meanwhile

    answer = batcher.ask([1, 2, 3, 4], cache_key="s", question=Question(1.0, 1.0, threshold=0.01))

    assert batcher.forward_count == 2 and batcher.prefetch_hits == 1
    assert batcher.forward.calls[-1] == [([1, 2, 3], [4])]  # the prefetch extended the session's KV
    expected = logits_of([1, 2, 3, 4]).softmax(-1)
    assert answer.split.above_probs[0] == pytest.approx(float(expected.max()), abs=1e-6)
    assert len(batcher.ahead) == 0  # taken out once used


def test_a_request_that_comes_while_its_prefetch_runs_waits_for_that_forward(batcher):
    blocker = held(batcher)
    assert batcher.prefetch([7, 8, 9], cache_key="t")
    got = []
    (asker,) = in_threads(lambda: got.append(batcher.logits([7, 8, 9], cache_key="t")))
    time.sleep(0.2)
    batcher.forward.release()
    join([blocker, asker])

    assert got[0].equal(logits_of([7, 8, 9]))
    rows = [call for call in batcher.forward.calls if ([], [7, 8, 9]) in call]
    assert len(rows) == 1  # one row for the prefetch and its request
    assert batcher.prefetch_hits == 1


def test_nothing_is_prefetched_twice_or_when_the_logits_are_at_hand(batcher):
    batcher.logits([4, 5])
    assert not batcher.prefetch([4, 5])  # in the logits cache
    blocker = held(batcher)
    assert batcher.prefetch([4, 5, 6])
    assert not batcher.prefetch([4, 5, 6])  # already coming
    batcher.forward.release()
    join([blocker])
    assert wait_until(lambda: len(batcher.ahead) == 1)
    assert not batcher.prefetch([4, 5, 6])  # ready
    assert batcher.prefetches == 1


def test_a_model_running_late_gets_no_prefetches(batcher):
    blocker = held(batcher)
    (waiting,) = in_threads(lambda: batcher.logits([3, 3, 3]))
    assert wait_until(lambda: batcher._queue.qsize() == 1)
    time.sleep(0.6)  # the queue's oldest request has waited longer than a prefetch may add to
    assert not batcher.prefetch([5, 5, 5])
    batcher.forward.release()
    join([blocker, waiting])
    assert batcher.prefetches == 0


def test_prefetching_is_off_without_room_for_it():
    b = fake_batcher(PREFETCH_ENTRIES=0)
    try:
        assert not b.prefetch([1, 2, 3])
        assert b.forward_count == 0
    finally:
        b.close()


def test_prefetches_nobody_waits_for_yet_share_one_forward():
    b = fake_batcher(PREFETCH_ENTRIES=8, PREFETCH_WAIT_MS=1000)
    try:
        for i in range(3):  # three students append within the wait
            assert b.prefetch([i + 1, 2, 3], cache_key=f"s{i}")
            time.sleep(0.05)
        assert wait_until(lambda: b.forward_count == 1)
        assert b.forward.rows == [3]
    finally:
        b.close()


def test_a_prefetch_somebody_asks_for_does_not_wait_for_company():
    b = fake_batcher(PREFETCH_ENTRIES=8, PREFETCH_WAIT_MS=30_000)
    try:
        assert b.prefetch([9, 9, 9], cache_key="s")
        time.sleep(0.1)
        assert b.forward_count == 0  # held back for company
        started = time.monotonic()
        got = b.logits([9, 9, 9], cache_key="s", timeout=10)
        assert time.monotonic() - started < 5  # not the 30 s the batch could have waited
        assert got.equal(logits_of([9, 9, 9]))
        assert b.forward.rows == [1] and b.prefetch_hits == 1
    finally:
        b.close()
