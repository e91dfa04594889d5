"""One forward pass of a Hugging Face causal LM over several rows at once.

Each row is a sequence with an optional cached past (its own keys and values)
and the new tokens to read. Rows with different past lengths are left-padded
in both the past and the new tokens; the attention mask hides the padding and
the position ids stay each row's true positions, so every row gets the
logits it would get alone (within float rounding). A single row is a batch
of one.

Keys and values are copied once per step: each layer's batch tensor is
allocated at its full length (past + new tokens), the rows' pasts are copied
in, and the forward writes the new tokens' keys and values straight into it
(a DynamicCache would concatenate, a second copy of the whole past). Each
row's keys and values are then handed back as views of that tensor: the rows
of a batch stay together instead of being copied out one by one.
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
        self.layer_count = int(model.config.num_hidden_layers)

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

        cache = _batch_cache(steps, P, self.layer_count)
        out = self.model(
            input_ids=tensor(input_ids),
            # Nothing padded (a single row, or rows in step): the causal mask alone.
            attention_mask=tensor(mask) if padded else None,
            position_ids=tensor(positions),
            cache=cache,
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
            layers = [(_row(layer.keys, i, spans), _row(layer.values, i, spans)) for layer in cache.layers]
            results.append((logits[i] if n == 1 else logits[i].clone(), layers))
        return results


def _row(tensor, i, spans):
    """Row ``i`` of a batch KV tensor (batch, heads, positions, dim), only the
    positions in ``spans``, batch 1: a view when they are one span."""
    import torch

    parts = [tensor[i : i + 1, :, span] for span in spans]
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)


_layer_class = None


def _batch_cache(steps: list[Step], P: int, layer_count: int):
    """A DynamicCache whose layers fill one preallocated batch tensor each."""
    global _layer_class
    from transformers.cache_utils import DynamicCache

    if _layer_class is None:
        _layer_class = _define_layer_class()
    cache = DynamicCache(ddp_cache_data=[(None, None)] * layer_count)
    cache.layers = [_layer_class(steps, index, P) for index in range(layer_count)]
    return cache


def _define_layer_class():
    from transformers.cache_utils import DynamicLayer

    class BatchLayer(DynamicLayer):
        """One layer's keys and values for a padded batch, in one tensor of
        the batch's full length: the rows' pasts (left-padded to ``P``)
        copied in when the forward reaches this layer, the new tokens written
        after them by :meth:`update`."""

        def __init__(self, steps, index, P):
            super().__init__()
            self.steps, self.index, self.filled = steps, index, P

        def get_seq_length(self) -> int:
            return self.filled

        def update(self, key_states, value_states, *args, **kwargs):
            m = key_states.shape[2]
            if not self.is_initialized:
                self._allocate(key_states, value_states, self.filled + m)
            end = self.filled + m
            self.keys[:, :, self.filled : end] = key_states
            self.values[:, :, self.filled : end] = value_states
            self.filled = end
            return self.keys[:, :, :end], self.values[:, :, :end]

        def _allocate(self, key_states, value_states, length):
            n, heads, _, dim = key_states.shape
            P = self.filled
            self.device = key_states.device
            self.keys = key_states.new_empty((n, heads, length, dim))
            self.values = value_states.new_empty((n, heads, length, dim))
            for i, s in enumerate(self.steps):
                pad = P - s.past_len
                if pad:  # masked, but must hold numbers (0 x NaN is NaN)
                    self.keys[i, :, :pad] = 0
                    self.values[i, :, :pad] = 0
                if s.past_len:
                    past_keys, past_values = s.past[self.index]
                    self.keys[i, :, pad:P] = past_keys[0]
                    self.values[i, :, pad:P] = past_values[0]
            self.steps = None  # the pasts may go
            self.is_initialized = True

    return BatchLayer
