"""One forward pass of a Hugging Face causal LM over several rows at once.

Each row is a sequence with an optional cached past (its own keys and values)
and the new tokens to read. Rows with different past lengths are left-padded
in both the past and the new tokens; the attention mask hides the padding and
the position ids stay each row's true positions, so every row gets the
logits it would get alone (within float rounding). A single row is a batch
of one: no padding, and its past is handed over without a copy.
"""

from __future__ import annotations

from typing import NamedTuple


class Step(NamedTuple):
    """What one row of a forward reads."""

    new_ids: list  # the tokens to read
    past: list | None  # [(keys [1, heads, past_len, dim], values), ...] per layer, or None
    past_len: int


class PaddedForward:
    """``forward(steps) -> [(logits, layers), ...]``: per row, the last
    position's logits (float32, on the CPU, where the maths runs) and the
    row's whole KV (past + new) as ``[(keys [1, heads, len, dim], values), ...]``."""

    PAD_ID = 0  # any id: padded positions are masked out

    def __init__(self, model):
        self.model = model
        self.device = next(model.parameters()).device

    def __call__(self, steps: list[Step]) -> list[tuple]:
        import torch

        n = len(steps)
        P = max(s.past_len for s in steps)
        M = max(len(s.new_ids) for s in steps)
        input_ids, positions, mask, padded = [], [], [], False
        for s in steps:
            m, pad = len(s.new_ids), M - len(s.new_ids)
            input_ids.append([self.PAD_ID] * pad + list(s.new_ids))
            positions.append([0] * pad + list(range(s.past_len, s.past_len + m)))
            mask.append([0] * (P - s.past_len) + [1] * s.past_len + [0] * pad + [1] * m)
            padded = padded or pad > 0 or s.past_len < P

        def tensor(rows):
            return torch.tensor(rows, dtype=torch.long, device=self.device)

        out = self.model(
            input_ids=tensor(input_ids),
            # Nothing padded (a single row, or rows in step): the causal mask alone.
            attention_mask=tensor(mask) if padded else None,
            position_ids=tensor(positions),
            cache=_dynamic_cache(_padded_past(steps, P)) if P else None,
            use_cache=True,
            logits_to_keep=1,
        )
        logits = out.logits[:, -1].float().cpu()
        results = []
        for i, s in enumerate(steps):
            # Row i's own positions: its past [P - past_len, P) and its new
            # tokens [P + M - m, P + M); one span when nothing is padded between.
            m = len(s.new_ids)
            if m == M or s.past_len == 0:
                spans = [slice(P - s.past_len, P + M)] if m == M else [slice(P + M - m, P + M)]
            else:
                spans = [slice(P - s.past_len, P), slice(P + M - m, P + M)]
            layers = [(_row(layer.keys, i, spans), _row(layer.values, i, spans)) for layer in out.cache.layers]
            results.append((logits[i] if n == 1 else logits[i].clone(), layers))
        return results


def _padded_past(steps: list[Step], P: int) -> list:
    """Per layer, the rows' pasts left-padded to ``P`` positions as one tensor
    (batch, heads, P, dim). A single row's past is used as it is."""
    if len(steps) == 1:
        return steps[0].past
    template = next(s.past for s in steps if s.past is not None)
    layers = []
    for index, (k0, v0) in enumerate(template):
        keys = k0.new_zeros((len(steps), k0.shape[1], P, k0.shape[3]))
        values = v0.new_zeros((len(steps), v0.shape[1], P, v0.shape[3]))
        for i, s in enumerate(steps):
            if s.past is not None and s.past_len:
                keys[i, :, P - s.past_len :] = s.past[index][0][0]
                values[i, :, P - s.past_len :] = s.past[index][1][0]
        layers.append((keys, values))
    return layers


def _dynamic_cache(layers):
    """A DynamicCache that holds these ``(keys, values)`` as they are.

    ``DynamicCache(ddp_cache_data=...)`` concatenates each layer onto an empty
    tensor: a copy of the whole past on every step, on top of the copy the
    forward makes when it appends the new tokens."""
    from transformers.cache_utils import DynamicCache

    cache = DynamicCache(ddp_cache_data=[(None, None)] * len(layers))
    for layer, (keys, values) in zip(cache.layers, layers):
        # Let the layer initialise itself (dtype, device) from an empty slice,
        # then hold the tensors themselves.
        layer.update(keys[:, :, :0], values[:, :, :0])
        layer.keys, layer.values = keys, values
    return cache


def _row(tensor, i, spans):
    """Row ``i`` of a batched KV tensor (batch, heads, positions, dim), only
    the positions in ``spans``, as a tensor of its own (batch 1)."""
    import torch

    if tensor.shape[0] == 1 and len(spans) == 1 and spans[0] == slice(0, tensor.shape[2]):
        return tensor  # a batch of one: the forward's own tensor is this row's
    parts = [tensor[i : i + 1, :, span] for span in spans]
    if len(parts) > 1:
        return torch.cat(parts, dim=2)
    # A copy even when the slice is already contiguous: a view would keep the
    # whole batch's tensor alive in the KV store.
    return parts[0].clone(memory_format=torch.contiguous_format)
