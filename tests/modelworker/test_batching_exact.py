"""Batching on the real model changes nothing a student sees: every
probability within 1e-5 of a single-row forward, and a seeded spin draws the
same token whatever else shares its forward."""

import threading

import pytest
import torch
from django.conf import settings

from modelworker import sampling
from modelworker.engine import LoadedModel
from modelworker.engine.batch_maths import Question
from modelworker.engine.padded_forward import PaddedForward

from .test_engine_batcher import in_threads, join, wait_until

PROMPTS = ["The cat sat on the", "Once upon a time, there was a", "The capital of France is", "In 1492, Columbus sailed"]


class Gated:
    """The real padded forward, which can be held so that requests queue up
    and share the next forward; records the rows of each forward."""

    def __init__(self, model):
        self.real = PaddedForward(model)
        self.rows = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, steps):
        self.entered.set()
        self.gate.wait(30)
        self.rows.append(len(steps))
        return self.real(steps)


@pytest.fixture
def own(smol):
    """A model of its own (own caches and batcher) on the loaded weights."""
    forward = Gated(smol.model)
    m = LoadedModel(smol.spec, smol.model, smol.tokenizer, {**settings.MODELWORKER, "BATCH_WAIT_MS": 0}, forward=forward)
    yield m, forward
    m.close()


def together(m, forward, calls):
    """Run ``calls`` so that they share one forward (behind a held one)."""
    forward.gate.clear()
    forward.entered.clear()
    (blocker,) = in_threads(lambda: m.logits(m.encode("Something else entirely, to hold the batcher")))
    assert forward.entered.wait(30)
    threads = in_threads(*calls)
    assert wait_until(lambda: m.batcher._queue.qsize() == len(calls))
    forward.gate.set()
    join([blocker, *threads])


def plain(smol, ids):
    with torch.inference_mode():
        return torch.softmax(smol.model(torch.tensor([ids]), logits_to_keep=1).logits[0, -1].float(), -1)


def test_no_probability_moves_more_than_1e_5_when_rows_share_a_forward(smol, own):
    m, forward = own
    sequences = [m.encode(p) for p in PROMPTS]
    # Two rows extend a cached prefix (of different lengths), two are read whole.
    m.logits(sequences[0][:-1], cache_key="r0")
    m.logits(sequences[1][:-3], cache_key="r1")
    everything = Question(top_n=m.vocab_size)
    got = {}
    together(m, forward, [lambda i=i: got.update({i: m.ask(sequences[i], f"r{i}", everything)}) for i in range(4)])
    assert max(forward.rows[-2:]) >= 2  # rows did share a forward
    for i, ids in enumerate(sequences):
        probs = torch.zeros(m.vocab_size)
        token_ids, values = zip(*got[i].top)
        probs[list(token_ids)] = torch.tensor(values)
        assert (probs - plain(smol, ids)).abs().max().item() < 1e-5


def test_a_seeded_spin_draws_the_same_token_alone_and_beside_another_request(own):
    m, forward = own
    a, b = m.encode(PROMPTS[0]), m.encode(PROMPTS[1])

    def spin(ids, seed):
        return m.ask(ids, None, Question(temperature=1.5, pick="sample", generator=sampling.make_generator(seed))).chosen

    alone = {}
    for seed in range(8):
        m.logits_cache.clear()
        alone[seed] = spin(a, seed)
    assert len(set(alone.values())) > 1  # the seeds do draw different tokens
    for seed in range(8):
        m.logits_cache.clear()
        m.kv.clear()
        rows = len(forward.rows)
        got = {}
        together(m, forward, [lambda: got.update(a=spin(a, seed)), lambda: got.update(b=spin(b, seed + 1000))])
        assert forward.rows[rows + 1] == 2  # the two requests shared one forward
        assert got["a"] == alone[seed]
