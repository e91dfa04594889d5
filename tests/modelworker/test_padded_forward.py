"""The one forward path on the real model: rows with pasts of different
lengths, padded into one batch, get what each would get alone, and keep the
keys and values their next step extends."""

import pytest
import torch

from modelworker.engine.padded_forward import PaddedForward, Step

from .test_engine import PROMPTS

# float32: batching may move a probability by rounding only.
TOLERANCE = 1e-5


@pytest.fixture
def forward(smol):
    return PaddedForward(smol.model)


def alone(smol, ids):
    """A plain forward of the whole sequence, as the model's own code runs it."""
    with torch.inference_mode():
        return torch.softmax(smol.model(torch.tensor([ids]), logits_to_keep=1).logits[0, -1].float(), -1)


def probs(logits):
    return torch.softmax(logits, -1)


def with_cached_prefixes(forward, sequences, cached):
    """A step per sequence whose first ``cached[i]`` tokens were read by an earlier forward."""
    steps = []
    with torch.inference_mode():
        for ids, n in zip(sequences, cached):
            if n == 0:
                steps.append(Step(ids, None, 0))
                continue
            ((_, layers),) = forward([Step(ids[:n], None, 0)])
            steps.append(Step(ids[n:], layers, n))
    return steps


def test_a_single_row_gives_the_plain_forwards_distribution(smol, forward):
    ids = smol.encode(PROMPTS[1])
    with torch.inference_mode():
        ((logits, layers),) = forward([Step(ids, None, 0)])
    assert (probs(logits) - alone(smol, ids)).abs().max().item() < TOLERANCE
    assert layers[0][0].shape[2] == len(ids)


def test_rows_with_different_pasts_in_one_batch_each_get_their_own_distribution(smol, forward):
    sequences = [smol.encode(p) for p in PROMPTS]
    # no past, pasts of 1, 3 and 2 tokens, and a past of all but the last token
    steps = with_cached_prefixes(forward, sequences, [0, 1, 3, 2, len(sequences[4]) - 1])
    with torch.inference_mode():
        results = forward(steps)
    for ids, (logits, layers) in zip(sequences, results):
        assert (probs(logits) - alone(smol, ids)).abs().max().item() < TOLERANCE
        assert all(k.shape[:3] == (1, k.shape[1], len(ids)) for k, _ in layers)  # its own positions only


def test_each_row_keeps_keys_and_values_its_next_step_extends(smol, forward):
    sequences = [smol.encode(p) for p in PROMPTS]
    steps = with_cached_prefixes(forward, sequences, [0, 1, 3, 2, 0])
    token = smol.encode(" and")[0]
    with torch.inference_mode():
        first = forward(steps)
        second = forward([Step([token], layers, len(ids)) for ids, (_, layers) in zip(sequences, first)])
    for ids, (logits, _) in zip(sequences, second):
        assert (probs(logits) - alone(smol, ids + [token])).abs().max().item() < TOLERANCE


def test_the_same_row_gets_the_same_distribution_whatever_else_is_in_the_batch(smol, forward):
    sequences = [smol.encode(p) for p in PROMPTS]
    with torch.inference_mode():
        ((single, _),) = forward([Step(sequences[0], None, 0)])
        batched = forward([Step(ids, None, 0) for ids in sequences])[0][0]
    assert (probs(single) - probs(batched)).abs().max().item() < TOLERANCE
