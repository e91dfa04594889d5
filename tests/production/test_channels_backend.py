"""The channel-layer protocol between web processes and model workers.

These run a real worker consumer (and the real model) in the test process on
the in-memory channel layer, so they need neither Redis nor PostgreSQL; the
same code on Redis, across processes, is exercised by test_stack.py and
test_faults.py.
"""

import asyncio
import random
import time

import pytest
from channels.layers import InMemoryChannelLayer, channel_layers
from channels.routing import ChannelNameRouter
from channels.worker import Worker

from modelworker.channels_backend import ChannelLayerBackend
from modelworker.errors import ModelError

from .conftest import MODEL

pytestmark = pytest.mark.no_services


@pytest.fixture
def layer():
    fresh = InMemoryChannelLayer()
    old = channel_layers.set("default", fresh)
    yield fresh
    channel_layers.set("default", old) if old is not None else channel_layers.backends.pop("default", None)


@pytest.fixture
def backend(settings, layer):
    settings.MODELWORKER = {**settings.MODELWORKER, "TIMEOUT_SECONDS": 10.0, "LIVENESS_SECONDS": 0.6, "HEARTBEAT_SECONDS": 0.1}
    return ChannelLayerBackend()


class WorkerTask:
    """``runworker model-worker``, but on this test's event loop."""

    def __init__(self, layer):
        from modelworker.routing import channel_consumers

        self.worker = Worker(ChannelNameRouter(channel_consumers), ["model-worker"], layer)
        # The listener itself (Worker.handle would start it as a task it never cancels).
        self.task = asyncio.ensure_future(self.worker.listener("model-worker"))

    async def stop(self):
        self.task.cancel()
        for details in self.worker.application_instances.values():
            details["future"].cancel()
        await asyncio.gather(self.task, *(d["future"] for d in self.worker.application_instances.values()), return_exceptions=True)


@pytest.fixture
async def worker(layer, engine):
    running = WorkerTask(layer)
    yield running
    await running.stop()


async def silent_worker(layer, heartbeats=0, channel="model-worker"):
    """A worker that takes one request, says it is working ``heartbeats`` times, then dies."""
    message = await layer.receive(channel)
    for _ in range(heartbeats):
        await layer.send(message["heartbeat_channel"], {"type": "model.working", "ids": [message["id"]]})
        await asyncio.sleep(0.1)
    return message


async def test_a_request_travels_to_a_worker_and_comes_back_as_the_engine_answered(backend, worker, engine):
    ids = engine.handle("tokenize", {"model": MODEL, "text": "The cat sat on the"})["ids"]
    over_channel = await backend.arequest(
        "distribution", {"model": MODEL, "ids": ids, "threshold": 0.05, "temperature": 1.0, "top_p": 1.0, "other_top_k": 3}
    )
    direct = engine.handle(
        "distribution", {"model": MODEL, "ids": ids, "threshold": 0.05, "temperature": 1.0, "top_p": 1.0, "other_top_k": 3}
    )
    assert over_channel == direct


async def test_model_errors_arrive_with_their_code_status_and_details(backend, worker):
    with pytest.raises(ModelError) as bad_text:
        await backend.arequest("tokenize", {"model": MODEL, "text": "lone \ud800 surrogate"})
    assert (bad_text.value.code, bad_text.value.status) == ("unknown_characters", 400)
    assert bad_text.value.extra["characters"] == ["\ud800"]

    # An id past 64 bits cannot even be written as msgpack: it still reaches the engine.
    with pytest.raises(ModelError) as huge:
        await backend.arequest("decode", {"model": MODEL, "ids": [10**30]})
    assert (huge.value.code, huge.value.status) == ("invalid_token", 400)

    with pytest.raises(ModelError) as unknown:
        await backend.arequest("no_such_op", {})
    assert unknown.value.status == 400


async def test_without_a_worker_the_request_fails_fast_with_a_503_that_says_what_to_start(backend, layer):
    started = time.monotonic()
    with pytest.raises(ModelError) as err:
        await backend.arequest("models", {})
    elapsed = time.monotonic() - started
    assert err.value.code == "worker_unavailable" and err.value.status == 503
    assert "runworker model-worker" in err.value.message
    # One liveness window, one retry: nowhere near the 10 s timeout.
    assert elapsed < 2.5


async def test_a_worker_that_dies_mid_request_is_replaced_by_another(backend, layer, engine):
    dying = asyncio.ensure_future(silent_worker(layer, heartbeats=2))
    await asyncio.sleep(0)  # the dying worker is first in line
    request = asyncio.ensure_future(backend.arequest("tokenize", {"model": MODEL, "text": "Hello"}))
    await dying
    healthy = WorkerTask(layer)
    try:
        result = await asyncio.wait_for(request, 5)
    finally:
        await healthy.stop()
    assert result["tokens"] == ["Hello"]
    assert backend.retries == 1


async def test_a_worker_still_working_at_the_deadline_gives_worker_timeout(settings, layer):
    settings.MODELWORKER = {**settings.MODELWORKER, "TIMEOUT_SECONDS": 1.0, "LIVENESS_SECONDS": 0.5}
    backend = ChannelLayerBackend()
    busy = asyncio.ensure_future(silent_worker(layer, heartbeats=30))
    started = time.monotonic()
    with pytest.raises(ModelError) as err:
        await backend.arequest("models", {})
    busy.cancel()
    assert err.value.code == "worker_timeout" and err.value.status == 503
    assert "1 s" in err.value.message
    assert time.monotonic() - started < 2


async def test_requests_in_flight_together_share_forward_passes_in_one_worker(backend, worker, engine):
    smol = engine.get(MODEL)
    rng = random.Random()
    # Fresh contexts, so no logits cache can answer them.
    contexts = [[rng.randrange(100, 40000) for _ in range(12)] for _ in range(16)]
    before_passes, before_rows = smol.forward_count, smol.batched_rows
    results = await asyncio.gather(
        *(
            backend.arequest("distribution", {"model": MODEL, "ids": ids, "threshold": 0.01, "temperature": 1.0, "top_p": 1.0, "other_top_k": 1})
            for ids in contexts
        )
    )
    assert all(r["vocabulary_size"] == smol.vocab_size for r in results)
    passes = smol.forward_count - before_passes
    rows = smol.batched_rows - before_rows
    assert rows == 16
    assert passes <= 8, f"16 concurrent requests took {passes} forward passes: the worker answered them one by one"


async def test_a_sessions_steps_stay_on_the_worker_holding_its_cache_and_move_when_it_dies(backend, layer, engine):
    first, second = WorkerTask(layer), WorkerTask(layer)
    try:
        ids = engine.handle("tokenize", {"model": MODEL, "text": "Step by step"})["ids"]
        step = {"model": MODEL, "ids": ids, "greedy": True, "cache_key": "stream:abc"}
        await backend.arequest("next_token", step)
        pinned = backend._affinity["stream:abc"]
        for _ in range(4):
            await backend.arequest("next_token", step)
            assert backend._affinity["stream:abc"] == pinned
        # Requests without a cache key go to any worker.
        await backend.arequest("models", {})
        assert set(backend._affinity) == {"stream:abc"}

        # Both workers die (nobody reads the pinned worker's channel any more);
        # a fresh one starts: the next step falls back to the shared channel.
        await first.stop()
        await second.stop()
        fresh = WorkerTask(layer)
        try:
            result = await asyncio.wait_for(backend.arequest("next_token", step), 5)
        finally:
            await fresh.stop()
        assert result["token_id"] >= 0
        assert backend.retries == 1
        assert backend._affinity["stream:abc"] != pinned
    finally:
        await first.stop()
        await second.stop()


async def test_a_callers_deadline_bounds_the_request_even_while_a_worker_still_says_it_is_working(backend, layer):
    # An HTTP request that spent its budget elsewhere (a stalled cache) gets only what is left of it.
    busy = asyncio.ensure_future(silent_worker(layer, heartbeats=40))
    started = time.monotonic()
    with pytest.raises(ModelError) as err:
        await backend.arequest("models", {}, deadline=started + 1.0)
    busy.cancel()
    assert err.value.code == "worker_timeout" and err.value.status == 503
    assert time.monotonic() - started < 1.6  # not the backend's 10 s


async def test_a_request_whose_budget_is_already_spent_fails_at_once_and_sends_nothing(backend, layer):
    started = time.monotonic()
    with pytest.raises(ModelError) as err:
        await backend.arequest("models", {}, deadline=started - 0.1)
    assert err.value.code == "worker_timeout"
    assert time.monotonic() - started < 0.1
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive("model-worker"), 0.2)  # nothing was sent
