"""The probability maths of a forward's rows, done on the forward thread
right after the forward, once for the whole batch.

A request says what it wants to know (a :class:`Question`); the batcher hands
back an :class:`Answer` of plain Python numbers. The formulas are those of
:mod:`modelworker.sampling`; here they run on the thread that already runs
torch, so request threads do no torch work at all: on 2 cores, their
OpenMP teams fought the forward's for the cores (a one-token step took
~50 ms instead of ~28). Each row is answered on its own row of
probabilities, and a draw uses the request's own generator, so what is
drawn does not depend on what else was in the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .. import sampling


@dataclass
class Question:
    """What a request wants to know about its next-token distribution."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    threshold: float | None = None  # split into wheel segments and Other at this probability
    other_top_k: int = 0  # how many of Other's most probable tokens to list
    pick: str | None = None  # "token" (token_id), "greedy", "sample" or "other" (a draw within Other)
    token_id: int | None = None
    generator: object = field(default=None, compare=False)  # a seeded torch.Generator, or None
    top_n: int = 0  # the most probable tokens, with their probabilities
    rank: bool = False  # the picked token's rank among all tokens

    def check(self):
        """Refuse impossible parameters before the request is queued: one bad
        row must not fail a batch. Raises ValueError like the maths would."""
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise ValueError("temperature must be a positive finite number")
        if not (0 < self.top_p <= 1):
            raise ValueError("top_p must be in (0, 1]")
        if self.threshold is not None and not (0 < self.threshold <= 1):
            raise ValueError("threshold must be in (0, 1]")
        if self.pick not in (None, "token", "greedy", "sample", "other"):
            raise ValueError(f"unknown pick {self.pick!r}")
        return self


@dataclass
class Answer:
    split: sampling.ThresholdSplit | None = None
    chosen: int | None = None
    probability: float | None = None  # of the chosen token
    rank_in_other: int | None = None  # when the chosen token is below the threshold
    rank: int | None = None
    top: list = field(default_factory=list)  # [(token_id, probability)], most probable first
    other_empty: str | None = None  # why "other" could not draw: nothing is below the threshold


def distributions(logits, questions):
    """Each row's probabilities: one softmax per temperature for all rows
    (a class shares one), then top-k / top-p on the rows that ask for them."""
    import torch

    rows = logits if isinstance(logits, torch.Tensor) else torch.stack(list(logits))
    probs = [None] * len(questions)
    by_temperature: dict[float, list[int]] = {}
    for i, q in enumerate(questions):
        by_temperature.setdefault(q.temperature, []).append(i)
    for temperature, index in by_temperature.items():
        same = rows if len(index) == len(questions) else rows[index]
        for i, p in zip(index, sampling.softmax(same, temperature)):
            probs[i] = p
    for i, q in enumerate(questions):
        if q.top_k or q.top_p < 1:
            probs[i] = sampling.top_p_filter(sampling.top_k_filter(probs[i], q.top_k), q.top_p)
    return probs


def answer(probs, q: Question) -> Answer:
    """One row's answer from its probabilities."""
    a = Answer()
    if q.threshold is not None:
        a.split = sampling.threshold_split(probs, q.threshold, q.other_top_k)
    if q.pick == "token":
        a.chosen = int(q.token_id)
    elif q.pick == "greedy":
        a.chosen = int(probs.argmax())
    elif q.pick == "sample":
        a.chosen = sampling.sample(probs, q.generator)
    elif q.pick == "other":
        try:
            a.chosen = sampling.sample_other(probs, q.threshold, q.generator)
        except ValueError as exc:
            a.other_empty = str(exc)
            return a
    if a.chosen is not None:
        a.probability = float(probs[a.chosen])
        if q.threshold is not None and a.probability < q.threshold:
            a.rank_in_other = sampling.rank_within_other(probs, q.threshold, a.chosen)
        if q.rank:
            a.rank = sampling.rank_of(probs, a.chosen)
    if q.top_n:
        values, ids = probs.topk(min(int(q.top_n), probs.numel()))
        a.top = list(zip(ids.tolist(), values.tolist()))
    return a


def answers(logits, questions) -> list:
    """The answers of a batch's rows (``logits``: one row per question). A
    row whose maths fails gets its exception, the others their answers."""
    out = []
    for probs, q in zip(distributions(logits, questions), questions):
        try:
            out.append(answer(probs, q))
        except Exception as exc:  # a bug in one row's maths: that request fails, not the batch
            out.append(exc)
    return out
