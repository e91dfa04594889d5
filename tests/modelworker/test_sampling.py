"""The maths of distributions: pure functions, checked on hand-made logits."""

import math

import pytest
import torch

from modelworker import sampling


def probs_of(values):
    return torch.tensor(values, dtype=torch.float32)


def test_softmax_with_temperature_one_is_the_plain_softmax():
    logits = torch.tensor([1.0, 2.0, 3.0])
    expected = [math.exp(x) / sum(math.exp(y) for y in (1, 2, 3)) for x in (1, 2, 3)]
    assert sampling.softmax(logits).tolist() == pytest.approx(expected, rel=1e-6)


def test_low_temperature_sharpens_and_high_temperature_flattens():
    logits = torch.tensor([1.0, 2.0, 3.0])
    base = sampling.softmax(logits, 1.0)
    sharp = sampling.softmax(logits, 0.5)
    flat = sampling.softmax(logits, 2.0)
    assert sharp[2] > base[2] > flat[2]
    assert sharp[0] < base[0] < flat[0]
    assert float(sharp.sum()) == pytest.approx(1.0) and float(flat.sum()) == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_softmax_refuses_temperatures_that_are_not_positive_numbers(bad):
    with pytest.raises(ValueError):
        sampling.softmax(torch.tensor([1.0, 2.0]), bad)


def test_threshold_split_puts_tokens_at_the_threshold_above_it():
    probs = probs_of([0.5, 0.25, 0.125, 0.0625, 0.0625])
    split = sampling.threshold_split(probs, threshold=0.125, other_top_k=10)
    assert split.above_ids == [0, 1, 2]  # 0.125 >= 0.125 is above
    assert split.above_probs == pytest.approx([0.5, 0.25, 0.125])
    assert split.other_total == pytest.approx(0.125)
    assert split.other_count == 2
    assert split.vocabulary_size == 5
    assert split.above_total + split.other_total == pytest.approx(1.0)


def test_threshold_split_samples_the_most_probable_of_other_first():
    probs = probs_of([0.6, 0.2, 0.05, 0.09, 0.01, 0.05])
    split = sampling.threshold_split(probs, threshold=0.1, other_top_k=2)
    assert split.above_ids == [0, 1]
    assert split.other_sample_ids == [3, 2] or split.other_sample_ids == [3, 5]
    assert split.other_sample_probs[0] == pytest.approx(0.09)
    assert split.other_count == 4


def test_threshold_one_leaves_only_a_certain_token_on_the_wheel():
    split = sampling.threshold_split(probs_of([0.7, 0.3]), threshold=1.0)
    assert split.above_ids == []
    assert split.other_total == pytest.approx(1.0)


def test_top_p_keeps_the_smallest_nucleus_reaching_p_and_renormalises():
    probs = probs_of([0.5, 0.3, 0.15, 0.05])
    filtered = sampling.top_p_filter(probs, 0.8)
    # 0.5 alone < 0.8, 0.5 + 0.3 reaches 0.8: two tokens are kept.
    assert (filtered > 0).tolist() == [True, True, False, False]
    assert filtered.tolist() == pytest.approx([0.5 / 0.8, 0.3 / 0.8, 0, 0])


def test_top_p_one_changes_nothing_and_tiny_top_p_keeps_the_top_token():
    probs = probs_of([0.5, 0.3, 0.2])
    assert sampling.top_p_filter(probs, 1.0) is probs
    assert sampling.top_p_filter(probs, 1e-9).tolist() == pytest.approx([1.0, 0, 0])


def test_top_k_keeps_k_tokens():
    filtered = sampling.top_k_filter(probs_of([0.1, 0.4, 0.2, 0.3]), 2)
    assert filtered.tolist() == pytest.approx([0, 0.4 / 0.7, 0, 0.3 / 0.7])


def test_tokens_removed_by_top_p_are_neither_segments_nor_other():
    probs = sampling.top_p_filter(probs_of([0.5, 0.3, 0.15, 0.05]), 0.9)
    split = sampling.threshold_split(probs, threshold=0.2)
    assert split.excluded_count == 1
    assert split.other_count == 1


def test_sampling_with_a_seed_is_repeatable_and_follows_the_probabilities():
    probs = probs_of([0.7, 0.2, 0.1])
    first = [sampling.sample(probs, sampling.make_generator(42)) for _ in range(5)]
    again = [sampling.sample(probs, sampling.make_generator(42)) for _ in range(5)]
    assert first == again
    generator = sampling.make_generator(7)
    draws = [sampling.sample(probs, generator) for _ in range(4000)]
    assert draws.count(0) / 4000 == pytest.approx(0.7, abs=0.03)
    assert draws.count(2) / 4000 == pytest.approx(0.1, abs=0.02)


def test_sampling_other_only_draws_below_threshold_in_proportion():
    probs = probs_of([0.6, 0.3, 0.075, 0.025])
    generator = sampling.make_generator(3)
    draws = [sampling.sample_other(probs, 0.1, generator) for _ in range(4000)]
    assert set(draws) <= {2, 3}
    assert draws.count(2) / 4000 == pytest.approx(0.75, abs=0.03)


def test_sampling_other_when_other_is_empty_is_an_error():
    with pytest.raises(ValueError, match="Other is empty"):
        sampling.sample_other(probs_of([0.5, 0.5]), 0.5)


def test_rank_within_other_counts_from_the_most_probable_below_threshold():
    probs = probs_of([0.6, 0.2, 0.1, 0.07, 0.03])
    assert sampling.rank_within_other(probs, 0.15, 2) == 1
    assert sampling.rank_within_other(probs, 0.15, 4) == 3


def test_perplexity_of_certain_tokens_is_one_and_grows_with_surprise():
    assert sampling.perplexity([0.0, 0.0]) == pytest.approx(1.0)
    assert sampling.perplexity([math.log(0.5), math.log(0.5)]) == pytest.approx(2.0)
    assert sampling.perplexity([]) is None


def test_log_probability_of_an_impossible_token_is_none_not_minus_infinity():
    assert sampling.log_probability(0.0) is None
    assert sampling.log_probability(1.0) == 0.0
