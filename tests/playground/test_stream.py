"""The playground stream's state machine (play, pause, step, regenerate, speed,
stop, limits, timeouts, quota) without Channels: what it sends for what it is
told, driven by a fake model. The real model's streams are tested through the
websocket (test_playground_websocket.py)."""

import asyncio

import pytest

from classrooms.metering import QuotaExceeded
from classrooms.policy import open_rules
from common.errors import AppError
from playground.run import Run
from playground.stream import Stream

from .conftest import Messages

EOS = 2
PROMPT_IDS = [10, 11, 12]


class FakeModel:
    """``next_token`` for a stream: the model's token after ``ids`` is
    ``100 + len(ids)`` (so a token says where it was drawn), a chosen one is
    taken as it is; id 2 is the end of text. ``hold`` keeps steps waiting,
    ``fail`` makes them raise."""

    def __init__(self):
        self.calls = []
        self.hold: asyncio.Event | None = None
        self.fail: Exception | None = None

    async def __call__(self, run, index, chosen_token_id):
        ids = run.ids(index)
        sampling = run.sampling(index)
        self.calls.append({"ids": ids, "chosen": chosen_token_id, **sampling})
        if self.hold is not None:
            await self.hold.wait()
        if self.fail is not None:
            raise self.fail
        token_id = 100 + len(ids) if chosen_token_id is None else chosen_token_id
        window = sampling["context_window"]
        top = [{"token_id": 100 + k, "token": f"<{100 + k}>", "prob": 0.5 / (k + 1)} for k in range(10)]
        return {
            "token_id": token_id,
            "token_text": f"<{token_id}>",
            "probability": 0.5,
            "top": top,
            "context_text": " ".join(map(str, ids[-window:])),
            "context_start": max(0, len(ids) - window),
            "context_tokens": min(len(ids), window),
            "eos": token_id == EOS,
        }


class Outbox(Messages):
    """What the stream sent, in order."""

    def __init__(self):
        self.queue: asyncio.Queue = asyncio.Queue()
        self.seen: list[dict] = []

    async def send(self, msg):
        self.seen.append(msg)
        await self.queue.put(msg)

    async def recv(self, timeout=2.0):
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def nothing(self, seconds=0.2):
        await asyncio.sleep(seconds)
        return self.queue.empty()


class Meter:
    """Records what a stream reports for usage; ``quota`` makes it refuse past that many tokens."""

    def __init__(self, quota=None):
        self.quota = quota
        self.charged = 0
        self.runs = 0
        self.writes = []

    async def tokens(self, n=1, *, force=False):
        if self.quota is not None and self.charged + n > self.quota:
            raise QuotaExceeded(self.quota, self.charged)
        self.charged += n
        self.writes.append((n, force))

    async def run_started(self):
        self.runs += 1


def make_run(**settings):
    settings = {"speed_ms": 0, "max_tokens": 50, "context_window": 64, **settings}
    quota_left = settings.pop("quota_left", None)
    return Run.build(
        model="fake",
        text="a prompt",
        settings=settings,
        rules=open_rules(),
        max_tokens_cap=500,
        quota_left=quota_left,
    )


@pytest.fixture
async def harness():
    """``await harness(**settings)`` starts a run on a new stream: (stream, outbox, model)."""
    streams = []

    async def tokenize(run):  # what the real prepare does first: the prompt's ids
        run.prompt_ids = run.prompt_ids or list(PROMPT_IDS)

    async def make(paused=False, meter=None, step_timeout=1.0, prepare=tokenize, **settings):
        out, model = Outbox(), FakeModel()
        stream = Stream(out.send, model, prepare=prepare, stream_id="s1", step_timeout=step_timeout)
        streams.append(stream)
        await stream.start(make_run(**settings), paused=paused, meter=meter)
        return stream, out, model

    yield make
    for stream in streams:
        await stream.close()


# --------------------------------------------------------------------------- playing


async def test_it_plays_to_max_tokens_and_says_done(harness):
    meter = Meter()
    stream, out, model = await harness(max_tokens=5, meter=meter)
    started = await out.until("started")
    assert started["state"] == "playing" and started["stream_id"] == "s1"
    assert started["prompt_length"] == 3 and started["max_tokens"] == 5 and started["tokens"] == []
    tokens = await out.tokens(5)
    assert [t["index"] for t in tokens] == [0, 1, 2, 3, 4]
    assert [t["position"] for t in tokens] == [3, 4, 5, 6, 7]
    # Each step continued from everything before it.
    assert [t["token_id"] for t in tokens] == [103, 104, 105, 106, 107]
    assert model.calls[-1]["ids"] == PROMPT_IDS + [103, 104, 105, 106]
    assert all(t["chosen_by"] == "model" and len(t["probabilities"]) == 10 for t in tokens)
    assert await out.recv() == {"type": "done", "reason": "max_tokens", "tokens": 5}
    assert await out.nothing()
    # Usage: five tokens, the last write forced at the end; one run.
    assert meter.charged == 5 and meter.writes[-1] == (1, True) and meter.runs == 1


async def test_a_seeded_run_gives_each_position_its_own_seed_and_the_window(harness):
    stream, out, model = await harness(max_tokens=3, seed=40, context_window=2, temperature=0.7, top_k=5)
    await out.tokens(3)
    assert [c["seed"] for c in model.calls] == [40, 41, 42]
    assert {(c["context_window"], c["temperature"], c["top_k"]) for c in model.calls} == {(2, 0.7, 5)}
    last = (await out.until("done"))
    assert last["reason"] == "max_tokens"
    # The model saw only the last two ids; the token message says so.
    assert out.seen[-2]["context_tokens"] == 2 and out.seen[-2]["context_start"] == 3


async def test_an_end_of_text_token_finishes_the_run(harness):
    stream, out, model = await harness(paused=True)
    await out.until("started")
    await stream.step(token_id=EOS)
    token = (await out.tokens(1))[0]
    assert token["eos"] is True and token["chosen_by"] == "hand"
    assert (await out.recv())["reason"] == "eos"


# --------------------------------------------------------------------------- pause, resume, step


async def test_pause_stops_the_tokens_and_resume_continues_from_there(harness):
    stream, out, model = await harness(speed_ms=100)
    await out.tokens(2)
    await stream.pause()
    seen = []
    paused = await out.until("paused", collect=seen)
    assert paused["reason"] == "user"
    assert all(m["type"] == "token" for m in seen)
    assert await out.nothing(0.3)
    await stream.resume()
    resumed = await out.recv()
    assert resumed == {"type": "resumed", "tokens": paused["tokens"]}
    assert (await out.tokens(1))[0]["index"] == paused["tokens"]


async def test_a_token_in_flight_when_paused_is_never_shown(harness):
    stream, out, model = await harness(paused=True)
    await out.until("started")
    model.hold = asyncio.Event()
    await stream.resume()
    assert (await out.recv())["type"] == "resumed"
    await asyncio.sleep(0.05)
    assert len(model.calls) == 1  # the first step is inside the model
    await stream.pause()
    assert (await out.recv()) == {"type": "paused", "reason": "user", "tokens": 0}
    model.hold.set()
    assert await out.nothing(0.2)
    assert stream.run.tokens == []


async def test_started_paused_it_waits_for_a_step(harness):
    stream, out, model = await harness(paused=True)
    assert (await out.until("started"))["state"] == "paused"
    assert await out.nothing() and model.calls == []
    await stream.step()
    assert (await out.tokens(1))[0]["index"] == 0
    assert await out.nothing()


async def test_a_hand_chosen_token_replaces_one_and_the_text_continues_from_it(harness):
    stream, out, model = await harness(paused=True)
    await out.until("started")
    for _ in range(3):
        await stream.step()
    first = await out.tokens(3)
    await stream.step(token_id=777, index=1)
    hand = (await out.tokens(1))[0]
    assert hand["index"] == 1 and hand["chosen_by"] == "hand" and hand["token_id"] == 777
    assert model.calls[-1]["ids"] == PROMPT_IDS + [first[0]["token_id"]] and model.calls[-1]["chosen"] == 777
    # What followed the replaced token is gone: the next step is index 2, after 777.
    await stream.step()
    nxt = (await out.tokens(1))[0]
    assert nxt["index"] == 2 and model.calls[-1]["ids"] == PROMPT_IDS + [first[0]["token_id"], 777]
    assert [t["token_id"] for t in stream.run.tokens] == [first[0]["token_id"], 777, nxt["token_id"]]


async def test_a_step_while_playing_pauses_first_then_gives_one_token(harness):
    stream, out, model = await harness(speed_ms=100)
    await out.tokens(1)
    await stream.step()
    paused = await out.until("paused")
    assert paused["reason"] == "step"
    assert (await out.tokens(1))[0]["index"] == paused["tokens"]
    assert await out.nothing(0.3)


async def test_a_step_past_the_end_is_refused_and_nothing_changes(harness):
    stream, out, model = await harness(paused=True)
    await out.until("started")
    await stream.step(token_id=5, index=3)
    err = await out.recv()
    assert err["code"] == "invalid_field" and err["field"] == "index" and err["in_reply_to"] == "step"
    assert "past the end" in err["message"] and model.calls == []


async def test_too_many_waiting_steps_are_refused(harness):
    stream, out, model = await harness(paused=True)
    await out.until("started")
    model.hold = asyncio.Event()
    accepted = 0
    with pytest.raises(AppError) as refused:
        for _ in range(20):
            await stream.step()
            accepted += 1
    assert refused.value.code == "busy" and stream.max_pending_steps <= accepted <= stream.max_pending_steps + 1
    model.hold.set()
    assert [t["index"] for t in await out.tokens(accepted)] == list(range(accepted))
    assert await out.nothing()


# --------------------------------------------------------------------------- speed, regenerate, stop


async def test_speed_is_paced_here_and_a_new_speed_applies_at_once(harness):
    loop = asyncio.get_running_loop()
    stream, out, model = await harness(speed_ms=150)
    await out.tokens(1)
    t0 = loop.time()
    await out.tokens(3)
    assert loop.time() - t0 >= 3 * 0.15 - 0.02
    await stream.set_speed(0)
    assert (await out.until("speed")) == {"type": "speed", "speed_ms": 0}
    t1 = loop.time()
    await out.tokens(5)
    assert loop.time() - t1 < 0.15 and stream.run.speed_ms == 0


async def test_regenerate_starts_the_same_run_again_without_its_tokens(harness):
    meter = Meter()
    stream, out, model = await harness(max_tokens=3, seed=9, temperature=0.5, meter=meter)
    first = await out.tokens(3)
    await out.until("done")
    await stream.regenerate()
    again = await out.until("started")
    assert again["tokens"] == [] and again["seed"] == 9 and again["temperature"] == 0.5 and again["state"] == "playing"
    second = await out.tokens(3)
    assert [t["token_id"] for t in second] == [t["token_id"] for t in first]
    assert meter.runs == 2 and meter.charged == 6


async def test_stop_ends_the_run_and_a_finished_run_refuses_to_go_on(harness):
    stream, out, model = await harness(speed_ms=100)
    await out.tokens(1)
    await stream.stop()
    done = await out.until("done")
    assert done["reason"] == "stopped"
    assert await out.nothing(0.3)
    with pytest.raises(AppError) as finished:
        await stream.resume()
    assert finished.value.code == "finished" and "stopped" in finished.value.message
    with pytest.raises(AppError) as not_playing:
        await stream.pause()
    assert not_playing.value.code == "not_playing"
    await stream.stop()  # again: says done again
    assert (await out.recv())["reason"] == "stopped"


async def test_at_max_tokens_a_step_is_refused_but_a_token_may_be_replaced(harness):
    stream, out, model = await harness(max_tokens=2)
    await out.tokens(2)
    assert (await out.recv())["reason"] == "max_tokens"
    await stream.step()
    err = await out.recv()
    assert err["code"] == "finished" and "max length (2 tokens)" in err["message"]
    await stream.step(token_id=55, index=0)
    assert (await out.tokens(1))[0]["token_id"] == 55
    assert stream.state == "paused" and stream.run.finished_reason is None
    assert [t["token_id"] for t in stream.run.tokens] == [55]


async def test_commands_before_a_start_say_so():
    out = Outbox()
    stream = Stream(out.send, FakeModel())
    for command in (stream.pause, stream.resume, stream.step, stream.stop, stream.regenerate):
        with pytest.raises(AppError) as nothing:
            await command()
        assert nothing.value.code == "not_started"
    await stream.set_speed(300)  # remembered for the runs to come
    assert (await out.recv()) == {"type": "speed", "speed_ms": 300} and stream.speed_ms == 300


# --------------------------------------------------------------------------- failures


async def test_a_step_slower_than_the_timeout_pauses_with_a_message(harness):
    stream, out, model = await harness(paused=True, step_timeout=0.1)
    await out.until("started")
    model.hold = asyncio.Event()
    await stream.step()
    err = await out.recv()
    assert err["code"] == "timeout" and "0.1 seconds" in err["message"]
    assert (await out.recv())["reason"] == "timeout"
    model.hold.set()  # the slow step ends later: it is dropped
    assert await out.nothing(0.2)
    await stream.step()
    assert (await out.tokens(1))[0]["index"] == 0


async def test_a_model_error_is_reported_and_pauses(harness):
    stream, out, model = await harness(paused=True)
    await out.until("started")
    model.fail = AppError("generation_failed", "Generation failed: simulated", 500)
    await stream.resume()
    assert (await out.recv())["type"] == "resumed"
    err = await out.recv()
    assert err["code"] == "generation_failed" and "simulated" in err["message"]
    assert (await out.recv()) == {"type": "paused", "reason": "error", "tokens": 0}
    model.fail = None
    await stream.step()
    assert (await out.tokens(1))[0]["index"] == 0


async def test_a_run_that_cannot_start_is_forgotten(harness):
    async def refuse(run):
        raise AppError("unknown_model", "There is no model called 'fake'.", model="fake")

    stream, out, model = await harness(prepare=refuse)
    err = await out.recv()
    assert err == {
        "type": "error",
        "code": "unknown_model",
        "message": "There is no model called 'fake'.",
        "model": "fake",
        "in_reply_to": "start",
    }
    with pytest.raises(AppError) as gone:
        await stream.pause()
    assert gone.value.code == "not_started"


async def test_a_bug_in_the_stream_is_reported_not_hidden(harness):
    async def broken(run):
        raise KeyError("ids")

    stream, out, model = await harness(prepare=broken)
    err = await out.recv()
    assert err["code"] == "generation_failed" and err["in_reply_to"] == "start"


async def test_the_class_quota_pauses_the_stream(harness):
    stream, out, model = await harness(quota_left=2)
    assert (await out.until("started"))["quota_left"] == 2
    await out.tokens(2)
    err = await out.recv()
    assert err["code"] == "quota_exceeded"
    assert (await out.recv())["reason"] == "quota"
    assert len(model.calls) == 2  # the model was not asked for a third


async def test_a_quota_the_meter_finds_used_up_pauses_the_stream(harness):
    stream, out, model = await harness(meter=Meter(quota=3))
    await out.tokens(4)  # the fourth is already generated when its charge is refused
    err = await out.recv()
    assert err["code"] == "quota_exceeded" and err["quota"] == 3
    assert (await out.recv())["reason"] == "quota"
    assert stream.run.quota_left == 0
    await stream.step()
    assert (await out.recv())["code"] == "quota_exceeded"


async def test_close_waits_for_a_step_inside_the_model(harness):
    stream, out, model = await harness(paused=True)
    await out.until("started")
    model.hold = asyncio.Event()
    await stream.step()
    await asyncio.sleep(0.05)
    closing = asyncio.create_task(stream.close())
    await asyncio.sleep(0.1)
    assert not closing.done()  # the step still runs in the model: its cache must not be freed yet
    model.hold.set()
    await asyncio.wait_for(closing, 1)
    assert await out.nothing(0.1)
