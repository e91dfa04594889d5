"""The batcher thread under pressure: a caller that gives up gets a 503 (not a
500) and costs no forward pass; streams keep sharing forwards; freed memory
goes back to the OS when idle."""

import sys
import threading
import time

import pytest
import torch
from django.conf import settings

from modelworker import engine as engine_module
from modelworker.engine import LoadedModel, ModelError


def own_batcher(smol, **overrides):
    """A second LoadedModel on the already loaded weights, with its own batcher thread."""
    return LoadedModel(smol.spec, smol.model, smol.tokenizer, {**settings.MODELWORKER, **overrides})


def on_forward(m, hook):
    """Call ``hook(group)`` before each of ``m``'s forward passes."""
    original = m._forward

    def forward(group):
        hook(group)
        return original(group)

    m._forward = forward


def recording(m):
    """The rows of each of ``m``'s forward passes, as they happen."""
    rows = []
    on_forward(m, lambda group: rows.append(len(group)))
    return rows


def holding(m):
    """``m``'s forwards wait for ``gate``; ``entered`` is set when one starts."""
    entered, gate = threading.Event(), threading.Event()

    def hold(group):
        entered.set()
        gate.wait(20)

    on_forward(m, hold)
    return entered, gate


def test_a_caller_that_times_out_gets_worker_timeout_and_its_job_is_skipped(smol):
    m = own_batcher(smol)
    entered, gate = holding(m)
    busy = threading.Thread(target=m.logits, args=(smol.encode("The cat sat on the"),))
    busy.start()
    assert entered.wait(20), "the batcher never started the first job"

    with pytest.raises(ModelError) as err:
        m.logits(smol.encode("Once upon a time, there was a"), timeout=0.2)
    assert err.value.code == "worker_timeout" and err.value.status == 503

    gate.set()
    busy.join(20)
    deadline = time.monotonic() + 10
    while not m._queue.empty() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert m.forward_count == 1  # the abandoned request was never computed
    assert len(m.logits_cache) == 1


def test_streams_that_come_back_at_different_moments_still_share_the_next_forward(smol):
    m = own_batcher(smol, BATCH_LINGER_MS=2000)
    rows = recording(m)
    streams = [list(smol.encode(f"Stream {i} begins a story about")) for i in range(3)]
    entered, gate = holding(m)  # a first forward holds the batcher while the streams queue
    blocker = threading.Thread(target=m.logits, args=(smol.encode("Something else entirely"),))
    blocker.start()
    assert entered.wait(20)
    first = [
        threading.Thread(target=m.logits, args=(ids, f"s{i}"), kwargs={"follow_up": True})
        for i, ids in enumerate(streams)
    ]
    for t in first:
        t.start()
    time.sleep(0.3)
    gate.set()
    for t in [blocker, *first]:
        t.join(30)
    assert rows == [1, 3]

    # One stream comes back at once, the other two 0.2 s later: one forward for all three.
    def step(i, delay):
        time.sleep(delay)
        m.logits(streams[i] + [13], f"s{i}", follow_up=True)

    second = [threading.Thread(target=step, args=(i, 0 if i == 0 else 0.2)) for i in range(3)]
    for t in second:
        t.start()
    for t in second:
        t.join(30)
    assert rows == [1, 3, 3]


def test_a_request_that_is_not_a_stream_step_does_not_wait_for_others(smol):
    m = own_batcher(smol, BATCH_LINGER_MS=2000)
    rows = recording(m)
    m.logits(smol.encode("A single question about the cat"))
    done = []
    later = threading.Thread(target=lambda: (time.sleep(0.3), done.append(m.logits(smol.encode("Another question")))))
    later.start()
    m.logits(smol.encode("A second question, asked at once"))
    assert not done  # answered before the other request even arrived
    later.join(30)
    assert rows == [1, 1, 1]


def test_the_probability_maths_leaves_the_cores_to_the_forward(smol, engine):
    """Each request thread does its softmax on one torch thread; the batcher
    keeps the configured count. Left at two, every request thread kept an
    OpenMP team and a token's forward took ~50 ms instead of ~28 ms."""
    m = own_batcher(smol)
    seen = []
    on_forward(m, lambda group: seen.append(torch.get_num_threads()))
    counts = []

    def request():
        engine.handle("distribution", {"model": smol.spec.id, "ids": smol.encode("Maths on a request thread")})
        counts.append(torch.get_num_threads())
        m.logits(smol.encode("A forward after that maths"))

    t = threading.Thread(target=request)
    t.start()
    t.join(30)
    assert counts == [1]
    assert seen == [settings.MODELWORKER["TORCH_THREADS"]]


def test_every_models_forwards_run_on_one_thread(smol):
    """Two models each have a batcher, but their forwards take turns on one
    thread: torch's OpenMP work ran ~1.8x slower beside another live thread
    that had done some."""
    threads = []
    models = [own_batcher(smol), own_batcher(smol)]
    for m in models:
        on_forward(m, lambda group: threads.append(threading.current_thread()))
    for i, m in enumerate(models):
        m.logits(smol.encode(f"Model {i} is asked about the sea"))
    assert len(threads) == 2 and threads[0] is threads[1]
    assert threads[0] not in {m._thread for m in models}


def test_the_batcher_returns_freed_memory_once_idle(smol, monkeypatch):
    calls = []
    monkeypatch.setattr(engine_module, "_heap_trimmer", lambda: calls.append)
    m = own_batcher(smol)
    m.TRIM_IDLE_SECONDS = 0.05
    time.sleep(0.3)
    assert calls == []  # nothing to give back before any work
    m.logits(smol.encode("The capital of France is"))
    deadline = time.monotonic() + 10
    while not calls and time.monotonic() < deadline:
        time.sleep(0.02)
    assert calls == [0]
    time.sleep(0.3)
    assert calls == [0]  # idle, nothing new freed: no further trims


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_malloc_trim_is_found_on_this_platform():
    assert engine_module._heap_trimmer() is not None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_malloc_arenas_are_limited_unless_the_environment_says_otherwise(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert engine_module._limit_malloc_arenas() is True
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert engine_module._limit_malloc_arenas() is False
