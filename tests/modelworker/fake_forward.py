"""A stand-in for the model's forward, to drive the batcher without a model.

Its logits are a function of the whole token sequence, and the "KV" it hands
back for a row is that row's token ids, so a test sees both what each row
was answered and what past the batcher gave each row.
"""

import threading

import torch
from django.conf import settings

from modelworker.engine.batcher import Batcher

VOCAB = 64


def logits_of(ids) -> torch.Tensor:
    """Distinct logits for every sequence (a peak at a position the ids decide)."""
    logits = torch.zeros(VOCAB)
    logits[sum((i + 1) * t for i, t in enumerate(ids)) % VOCAB] = 5.0
    logits[len(ids) % VOCAB] += 1.0
    return logits


class FakeForward:
    def __init__(self):
        self.calls = []  # per forward: [(past ids, new ids), ...] one per row
        self.threads = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    def hold(self):
        """Forwards wait for :meth:`release` from now on; ``entered`` tells when one is waiting."""
        self.entered.clear()
        self.gate.clear()

    def release(self):
        self.gate.set()

    @property
    def rows(self) -> list[int]:
        return [len(call) for call in self.calls]

    def __call__(self, steps):
        self.threads.append(threading.current_thread())
        self.entered.set()
        assert self.gate.wait(20), "a test held the forward and never released it"
        call, results = [], []
        for step in steps:
            past = [] if step.past is None else step.past[0][0][0, 0, :, 0].long().tolist()
            assert len(past) == step.past_len
            call.append((past, list(step.new_ids)))
            ids = past + list(step.new_ids)
            kv = torch.tensor(ids, dtype=torch.float32).view(1, 1, -1, 1)
            results.append((logits_of(ids), [(kv, kv.clone())]))
        self.calls.append(call)
        return results


def fake_batcher(trim=None, **config):
    """A batcher over a :class:`FakeForward` (``batcher.forward``), with the
    project's settings overridden by ``config``."""
    return Batcher(FakeForward(), {**settings.MODELWORKER, **config}, name="fake", trim=trim)
