"""The maths of a batch's rows, done at once on the forward thread: each
row gets what the per-row maths gives it, and a seeded draw does not depend
on the other rows."""

import pytest
import torch

from modelworker import sampling
from modelworker.engine.batch_maths import Question, answers

torch.manual_seed(0)
LOGITS = torch.randn(6, 500) * 3


def alone(row, q):
    (a,) = answers(LOGITS[row : row + 1], [q])
    return a


def test_every_row_gets_the_per_row_maths_whatever_its_neighbours_ask():
    questions = [
        Question(threshold=0.01, other_top_k=5),
        Question(temperature=0.5, threshold=0.02, other_top_k=3),
        Question(top_p=0.9, top_k=40, threshold=0.01),
        Question(temperature=2.0, pick="greedy", top_n=10),
        Question(pick="token", token_id=7, threshold=0.01, rank=True),
        Question(top_k=5, top_n=5),
    ]
    batch = answers(LOGITS, questions)
    for row, (q, got) in enumerate(zip(questions, batch)):
        probs = sampling.distribution(LOGITS[row], q.temperature, q.top_p, q.top_k)
        if q.threshold is not None:
            want = sampling.threshold_split(probs, q.threshold, q.other_top_k)
            assert got.split.above_ids == want.above_ids
            assert got.split.above_probs == pytest.approx(want.above_probs, abs=1e-7)
            assert got.split.other_total == pytest.approx(want.other_total, abs=1e-6)
            assert got.split.other_sample_ids == want.other_sample_ids
        if q.top_n:
            values, ids = probs.topk(q.top_n)
            assert [t for t, _ in got.top] == ids.tolist()
        if q.pick == "greedy":
            assert got.chosen == int(probs.argmax())
        if q.pick == "token":
            assert got.probability == pytest.approx(float(probs[7]), abs=1e-7)
            assert got.rank == sampling.rank_of(probs, 7)
            if got.probability < q.threshold:
                assert got.rank_in_other == sampling.rank_within_other(probs, q.threshold, 7)


@pytest.mark.parametrize("pick", ["sample", "other"])
def test_a_seeded_draw_is_the_same_alone_and_in_a_batch(pick):
    for seed in range(20):
        def q():
            return Question(threshold=0.01, pick=pick, generator=sampling.make_generator(seed))

        single = alone(2, q())
        others = [Question(pick="sample", generator=sampling.make_generator(seed + 100 + i)) for i in range(5)]
        batch = answers(LOGITS, others[:2] + [q()] + others[2:])
        assert batch[2].chosen == single.chosen


def test_a_draw_within_an_empty_other_is_reported_for_that_row_only():
    peaked = torch.full((2, 4), -1e9)
    peaked[:, 0] = 0.0  # all the mass on one token: nothing below the threshold
    empty, fine = answers(peaked, [Question(threshold=0.5, pick="other"), Question(pick="greedy")])
    assert empty.other_empty and "Other is empty" in empty.other_empty
    assert fine.chosen == 0


@pytest.mark.parametrize(
    "bad", [dict(temperature=0.0), dict(temperature=float("nan")), dict(top_p=0.0), dict(threshold=1.5), dict(pick="spin")]
)
def test_impossible_parameters_are_refused_before_a_row_joins_a_batch(bad):
    with pytest.raises(ValueError):
        Question(**bad).check()
