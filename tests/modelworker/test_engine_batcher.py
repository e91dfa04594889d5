"""The batcher, driven by a fake forward: which rows share a forward, what
past each row reads, what a caller that gives up gets, how it stops."""

import threading
import time

import pytest

from modelworker.errors import ModelError

from .fake_forward import fake_batcher, logits_of


def in_threads(*calls):
    """Start each call on a thread of its own; the threads."""
    threads = [threading.Thread(target=call) for call in calls]
    for t in threads:
        t.start()
    return threads


def join(threads):
    for t in threads:
        t.join(30)
        assert not t.is_alive()


def wait_until(condition, seconds=10):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


@pytest.fixture
def batcher():
    b = fake_batcher()
    yield b
    b.close()


def held(b):
    """Hold ``b``'s forwards and start one that waits at the gate; its thread."""
    b.forward.hold()
    (blocker,) = in_threads(lambda: b.logits([99, 98, 97]))
    assert b.forward.entered.wait(20), "the batcher never started the first job"
    return blocker


def test_a_sequence_extended_by_one_token_reads_only_that_token_on_its_cached_past(batcher):
    first = batcher.logits([1, 2, 3, 4], cache_key="s")
    second = batcher.logits([1, 2, 3, 4, 5], cache_key="s")
    assert batcher.forward.calls == [[([], [1, 2, 3, 4])], [([1, 2, 3, 4], [5])]]
    assert batcher.kv.reused_tokens == 4
    assert first.equal(logits_of([1, 2, 3, 4])) and second.equal(logits_of([1, 2, 3, 4, 5]))


def test_another_session_on_the_same_prompt_reuses_its_prefix(batcher):
    batcher.logits([1, 2, 3], cache_key="a")
    batcher.logits([1, 2, 3, 9], cache_key="b")
    assert batcher.forward.calls[-1] == [([1, 2, 3], [9])]


def test_a_sequence_whose_logits_were_evicted_reads_only_its_last_token_again(batcher):
    batcher.logits([1, 2, 3], cache_key="s")
    batcher.logits_cache.clear()
    assert batcher.logits([1, 2, 3], cache_key="s").equal(logits_of([1, 2, 3]))
    assert batcher.forward.calls[-1] == [([1, 2], [3])]


def test_a_repeated_sequence_is_answered_from_the_logits_cache(batcher):
    batcher.logits([5, 6, 7])
    hits = batcher.logits_cache.hits
    assert batcher.logits([5, 6, 7]).equal(logits_of([5, 6, 7]))
    assert batcher.forward_count == 1 and batcher.logits_cache.hits == hits + 1


def test_requests_that_arrive_during_a_forward_share_the_next_one(batcher):
    blocker = held(batcher)
    sequences = [[i, i + 1, i + 2, i + 3][: 2 + i % 3] for i in range(1, 9)]
    results = {}
    threads = in_threads(*[lambda ids=ids: results.update({tuple(ids): batcher.logits(ids)}) for ids in sequences])
    assert wait_until(lambda: batcher._queue.qsize() == len(sequences))
    batcher.forward.release()
    join([blocker, *threads])
    assert batcher.forward.rows == [1, len(sequences)]
    for ids in sequences:
        assert results[tuple(ids)].equal(logits_of(ids))


def test_identical_requests_in_flight_share_one_row(batcher):
    blocker = held(batcher)
    results = []
    threads = in_threads(*[lambda i=i: results.append(batcher.logits([4, 5, 6], f"student{i}")) for i in range(30)])
    assert wait_until(lambda: batcher._queue.qsize() == 30)
    batcher.forward.release()
    join([blocker, *threads])
    assert batcher.forward.rows == [1, 1]
    assert len(results) == 30 and all(r.equal(logits_of([4, 5, 6])) for r in results)
    # every student's key now names that sequence's KV: each next step extends it
    batcher.logits([4, 5, 6, 7], "student29")
    assert batcher.forward.calls[-1] == [([4, 5, 6], [7])]


def test_a_long_prefill_does_not_make_one_token_steps_wait_on_its_padding(batcher):
    batcher.logits([1, 2], cache_key="a")
    batcher.logits([3, 4], cache_key="b")
    blocker = held(batcher)
    long_prompt = list(range(10, 60))
    threads = in_threads(
        lambda: batcher.logits([1, 2, 7], "a"), lambda: batcher.logits([3, 4, 7], "b"), lambda: batcher.logits(long_prompt)
    )
    assert wait_until(lambda: batcher._queue.qsize() == 3)
    batcher.forward.release()
    join([blocker, *threads])
    assert batcher.forward.rows[-2:] == [2, 1]  # the two steps together, the prefill alone
    assert batcher.forward_count == 5


def test_a_caller_that_times_out_gets_worker_timeout_and_its_job_is_skipped(batcher):
    blocker = held(batcher)
    with pytest.raises(ModelError) as err:
        batcher.logits([1, 2, 3], timeout=0.2)
    assert err.value.code == "worker_timeout" and err.value.status == 503
    batcher.forward.release()
    join([blocker])
    assert wait_until(lambda: batcher._queue.empty())
    time.sleep(0.2)
    assert batcher.forward.rows == [1]  # the abandoned request was never computed
    assert len(batcher.logits_cache) == 1


def test_a_failed_forward_fails_its_requests_and_the_batcher_carries_on(batcher):
    fake = batcher.forward

    def broken(steps):
        raise RuntimeError("out of memory")

    batcher.forward = broken
    with pytest.raises(ModelError) as err:
        batcher.logits([1, 2])
    assert err.value.code == "generation_failed" and err.value.status == 500
    batcher.forward = fake
    assert batcher.logits([1, 2]).equal(logits_of([1, 2]))


def test_streams_that_come_back_at_different_moments_still_share_the_next_forward():
    b = fake_batcher(BATCH_LINGER_MS=2000)
    streams = [[10 + i, 20, 30] for i in range(3)]
    blocker = held(b)  # a first forward holds the batcher while the streams queue
    first = in_threads(*[lambda i=i: b.logits(streams[i], f"s{i}", follow_up=True) for i in range(3)])
    assert wait_until(lambda: b._queue.qsize() == 3)
    b.forward.release()
    join([blocker, *first])
    assert b.forward.rows == [1, 3]

    # One stream comes back at once, the other two 0.2 s later: one forward for all three.
    def step(i, delay):
        time.sleep(delay)
        b.logits(streams[i] + [13], f"s{i}", follow_up=True)

    join(in_threads(*[lambda i=i: step(i, 0 if i == 0 else 0.2) for i in range(3)]))
    assert b.forward.rows == [1, 3, 3]
    b.close()


def test_a_request_that_is_not_a_stream_step_does_not_wait_for_others():
    b = fake_batcher(BATCH_LINGER_MS=2000)
    b.logits([1, 2, 3])
    done = []
    (later,) = in_threads(lambda: (time.sleep(0.3), done.append(b.logits([4, 5]))))
    b.logits([6, 7, 8])
    assert not done  # answered before the other request even arrived
    join([later])
    assert b.forward.rows == [1, 1, 1]
    b.close()


def test_close_answers_what_was_queued_then_stops_the_thread(batcher):
    blocker = held(batcher)
    answers = []
    (waiting,) = in_threads(lambda: answers.append(batcher.logits([8, 9])))
    assert wait_until(lambda: batcher._queue.qsize() == 1)
    closing = threading.Thread(target=batcher.close)
    closing.start()
    batcher.forward.release()
    join([closing, blocker, waiting])
    assert not batcher._thread.is_alive()
    assert len(answers) == 1 and answers[0].equal(logits_of([8, 9]))
    with pytest.raises(ModelError) as err:
        batcher.logits([10, 11])
    assert err.value.code == "model_unavailable" and err.value.status == 503
    assert batcher.forward.rows == [1, 1]


def test_every_models_forwards_run_on_one_thread():
    """Two models each have a batcher, but their forwards take turns on one
    thread: torch's OpenMP work ran ~1.8x slower beside another live thread
    that had done some."""
    batchers = [fake_batcher(), fake_batcher()]
    for i, b in enumerate(batchers):
        b.logits([i, 1, 2])
    threads = [b.forward.threads[0] for b in batchers]
    assert threads[0] is threads[1]
    assert threads[0] not in {b._thread for b in batchers}
    for b in batchers:
        b.close()


def test_the_batcher_returns_freed_memory_once_idle():
    calls = []
    b = fake_batcher(trim=calls.append)
    b.TRIM_IDLE_SECONDS = 0.05
    time.sleep(0.3)
    assert calls == []  # nothing to give back before any work
    b.logits([1, 2, 3])
    assert wait_until(lambda: calls)
    assert calls == [0]
    time.sleep(0.3)
    assert calls == [0]  # idle, nothing new freed: no further trims
    b.close()
