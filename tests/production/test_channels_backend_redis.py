"""The web side of the worker protocol on real Redis: many requests in flight
in one process, each waiting for its reply in short liveness windows, lose
no reply and never hang.

A channels-redis ``receive()`` cancelled by a timeout can lose a message it
had already taken from Redis, or leave its receive lock held so that every
later receive in the process waits forever. The backend once waited for
each reply that way, a liveness window at a time; under load a killed
worker then cost a student a 20 s timeout in CI. Now one reader per event
loop receives, and is never cancelled.
"""

import asyncio
import json
import random
import uuid

import pytest

from modelworker.channels_backend import ChannelLayerBackend
from modelworker.redis_layer import RedisChannelLayer

from .conftest import cleanup_prefix


@pytest.fixture
def redis_layers(services, settings):
    prefix = f"test-replies-{uuid.uuid4().hex[:8]}:"
    config = {"hosts": [{"address": services["redis"], "socket_timeout": 15}], "prefix": prefix, "capacity": 1000, "expiry": 30}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "modelworker.redis_layer.RedisChannelLayer", "CONFIG": config}}
    # Short windows: every request waits through several of them, as under load.
    settings.MODELWORKER = {**settings.MODELWORKER, "TIMEOUT_SECONDS": 20.0, "LIVENESS_SECONDS": 0.15, "HEARTBEAT_SECONDS": 0.05}
    yield config
    cleanup_prefix(services["redis"], prefix)


async def fake_worker(config, stop: asyncio.Event, sent: list):
    """Takes requests from ``model-worker``; says it is working every 50 ms
    and answers each after 0-0.4 s, with the request's own id in the result
    (each reply's request id goes in ``sent``)."""
    layer = RedisChannelLayer(**config)

    async def answer(message):
        for _ in range(random.randrange(9)):
            await layer.send(message["heartbeat_channel"], {"type": "model.working", "ids": [message["id"]]})
            await asyncio.sleep(0.05)
        await layer.send(
            message["reply_channel"],
            {"type": "model.reply", "id": message["id"], "worker": "fake", "worker_channel": None,
             "result": json.dumps({"asked": json.loads(message["payload"])["n"]})},
        )
        sent.append(message["id"])

    tasks = set()
    while not stop.is_set():
        message = await layer.receive("model-worker")
        task = asyncio.ensure_future(answer(message))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def test_many_requests_in_one_process_each_get_their_own_reply_and_none_is_lost(redis_layers):
    backend = ChannelLayerBackend()
    stop, sent = asyncio.Event(), []
    worker = asyncio.ensure_future(fake_worker(redis_layers, stop, sent))

    async def student(k):
        for round_ in range(15):
            n = k * 100 + round_
            assert await backend.arequest("models", {"n": n}) == {"asked": n}

    try:
        await asyncio.wait_for(asyncio.gather(*(student(k) for k in range(24))), 60)
    finally:
        stop.set()
        worker.cancel()
    # Not one reply went missing: each the worker sent reached its request,
    # or came after it had given up (a loaded host can stall the loop past a
    # 0.15 s window, and the request is then sent again). The old receive per
    # request lost some, and requests were sent again for them.
    for _ in range(50):  # the answers to attempts given up may still be on their way
        if len(sent) == 360 + backend.retries and 360 + backend.late_replies == len(sent):
            break
        await asyncio.sleep(0.1)
    assert len(sent) == 360 + backend.retries  # every attempt was answered once
    assert 360 + backend.late_replies == len(sent)  # and every answer arrived


async def test_receives_cut_off_by_timeouts_lose_no_message_and_stall_no_other(redis_layers):
    # What a websocket consumer does when its socket closes, and what a
    # caller waiting with a timeout does: cancel a receive on a channel of
    # its own while others in the process wait on theirs.
    layer, sender = RedisChannelLayer(**redis_layers), RedisChannelLayer(**redis_layers)
    sending = set()

    async def one_channel_after_another():
        for _ in range(40):
            channel = await layer.new_channel()
            task = asyncio.ensure_future(asyncio.sleep(random.uniform(0, 0.05)))
            task.add_done_callback(lambda _, c=channel: sending.add(asyncio.ensure_future(sender.send(c, {"type": "x"}))))
            while True:  # a lost message would keep this loop going until the wait_for below
                try:
                    await asyncio.wait_for(layer.receive(channel), random.uniform(0.001, 0.03))
                    break
                except asyncio.TimeoutError:
                    pass

    await asyncio.wait_for(asyncio.gather(*(one_channel_after_another() for _ in range(16))), 30)
