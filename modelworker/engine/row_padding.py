"""Linear layers that round a middling batch up to a full block of rows.

On the CPU, PyTorch's matrix multiply (MKL sgemm) takes a slow path for a
few rows and a blocked one from 16 rows on, so 8 to 15 rows cost more than
16. Measured on the 2-core VM (2026-12-04, SmolLM2-135M, one torch thread, a
one-token step after 30 tokens): 8 rows 174 ms, 12 rows 209 ms, 16 rows
153 ms; the lm_head alone ([rows, 576] x [576, 49152]) 39 ms at 8 rows, 56 at
12, 23 at 16. Zero rows added up to 16 make 8-15 rows cost what 16 do (about
150 ms); they are dropped from the output, and every real row is computed
from its own input alone, as before (float32; a row's numbers move by
rounding only, checked by tests/modelworker/test_row_padding.py).
"""

from __future__ import annotations

import types

# Rows in [LOW, HIGH) are padded to HIGH. Below LOW the slow path is still
# cheaper than 16 rows (4 rows: 134 ms, 6: 108-131 ms on the VM above).
LOW, HIGH = 8, 16


def _padded_forward(self, x):
    import torch.nn.functional as F

    rows = x.numel() // x.shape[-1] if x.dim() else 0
    if not LOW <= rows < HIGH:
        return F.linear(x, self.weight, self.bias)
    flat = x.reshape(rows, x.shape[-1])
    padded = flat.new_zeros((HIGH, flat.shape[1]))
    padded[:rows] = flat
    out = F.linear(padded, self.weight, self.bias)[:rows]
    return out.reshape(*x.shape[:-1], out.shape[-1])


def pad_small_batches(model) -> int:
    """Give every ``nn.Linear`` of ``model`` (on the CPU) the padded forward;
    the number of layers changed. Other layer types (GPT-2's Conv1D) keep
    theirs."""
    import torch

    changed = 0
    for module in model.modules():
        if type(module) is torch.nn.Linear and module.weight.device.type == "cpu":
            module.forward = types.MethodType(_padded_forward, module)
            changed += 1
    return changed
