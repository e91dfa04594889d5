"""The batcher thread under pressure: a caller that gives up gets a 503 (not a
500) and costs no forward pass; freed memory goes back to the OS when idle."""

import sys
import threading
import time

import pytest
from django.conf import settings

from modelworker import engine as engine_module
from modelworker.engine import LoadedModel, ModelError


def own_batcher(smol, **overrides):
    """A second LoadedModel on the already loaded weights, with its own batcher thread."""
    return LoadedModel(smol.spec, smol.model, smol.tokenizer, {**settings.MODELWORKER, **overrides})


def test_a_caller_that_times_out_gets_worker_timeout_and_its_job_is_skipped(smol):
    m = own_batcher(smol)
    entered, gate = threading.Event(), threading.Event()
    original = m._forward

    def slow_forward(group):
        entered.set()
        gate.wait(20)
        return original(group)

    m._forward = slow_forward
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
