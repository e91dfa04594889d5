"""Linear layers that round 8-15 rows up to 16: each real row gets what it
would get unpadded (float32 rounding only), the padding reaches the matrix
multiply, and the engine's models have it."""

import copy

import pytest
import torch

from modelworker.engine import row_padding

TOLERANCE = 1e-5  # the batching limit: a probability moves by rounding only


@pytest.fixture(scope="module")
def models():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(7)
    config = LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    plain = LlamaForCausalLM(config).eval()
    padded = copy.deepcopy(plain)
    assert row_padding.pad_small_batches(padded) == 2 * 7 + 1  # q k v o, gate up down per layer; lm_head
    return plain, padded


def matmul_rows(model, ids) -> set[int]:
    """The row counts the forward's matrix multiplies were given."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof, torch.inference_mode():
        model(ids)
    return {event.input_shapes[0][0] for event in prof.events() if event.name in ("aten::addmm", "aten::mm") and event.input_shapes}


@pytest.mark.parametrize("rows", [1, 7, 8, 12, 15, 16, 20])
def test_every_row_gets_its_unpadded_probabilities(models, rows):
    plain, padded = models
    ids = torch.randint(0, 512, (rows, 1), generator=torch.Generator().manual_seed(rows))
    with torch.inference_mode():
        expected = torch.softmax(plain(ids).logits[:, -1], -1)
        got = torch.softmax(padded(ids).logits[:, -1], -1)
    assert got.shape == expected.shape == (rows, 512)
    assert (got - expected).abs().max().item() <= TOLERANCE


def test_a_middling_batch_is_multiplied_as_sixteen_rows_and_others_as_they_are(models):
    plain, padded = models
    twelve = torch.randint(0, 512, (12, 1))
    assert matmul_rows(plain, twelve) == {12}
    assert matmul_rows(padded, twelve) == {16}
    # A prompt of 3 rows x 4 tokens is 12 rows for the linear layers too.
    assert matmul_rows(padded, torch.randint(0, 512, (3, 4))) == {16}
    for outside in (5, 20):
        assert matmul_rows(padded, torch.randint(0, 512, (outside, 1))) == {outside}


@pytest.mark.real_model
def test_the_engine_pads_its_model(smol):
    ten = torch.randint(0, 1000, (10, 1))
    assert 16 in matmul_rows(smol.model, ten)
