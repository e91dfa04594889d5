"""The maths of next-token distributions, as pure functions on tensors.

Nothing here knows about sessions, HTTP or models: a 1-D tensor of logits
goes in, numbers come out. Every function is deterministic given its inputs
(sampling takes an explicit ``torch.Generator`` or seed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .metrics import category, log_probability, perplexity  # noqa: F401  (part of the maths API)


def softmax(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``softmax(logits / T)`` in float32 (float64 accumulation is not needed at 50k)."""
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError("temperature must be a positive finite number")
    return torch.softmax(logits.float() / temperature, dim=-1)


def top_p_filter(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most probable tokens whose mass
    reaches ``top_p`` (the token that crosses the line is kept), renormalise.

    ``top_p >= 1`` returns ``probs`` unchanged.
    """
    if not (0 < top_p <= 1):
        raise ValueError("top_p must be in (0, 1]")
    if top_p >= 1:
        return probs
    sorted_probs, order = torch.sort(probs, descending=True)
    cumulative = torch.cumsum(sorted_probs, dim=-1)
    # Keep a token when the mass before it is still below top_p.
    keep_sorted = (cumulative - sorted_probs) < top_p
    keep_sorted[0] = True
    keep = torch.zeros_like(probs, dtype=torch.bool)
    keep[order[keep_sorted]] = True
    filtered = torch.where(keep, probs, torch.zeros_like(probs))
    return filtered / filtered.sum()


def top_k_filter(probs: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keep the ``top_k`` most probable tokens and renormalise (0 = no filter)."""
    if top_k is None or top_k <= 0 or top_k >= probs.numel():
        return probs
    values, indices = torch.topk(probs, top_k)
    filtered = torch.zeros_like(probs)
    filtered[indices] = values
    return filtered / filtered.sum()


def distribution(logits: torch.Tensor, temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0) -> torch.Tensor:
    """The probabilities a student is shown: temperature, then top-k, then top-p."""
    return top_p_filter(top_k_filter(softmax(logits, temperature), top_k), top_p)


@dataclass(frozen=True)
class ThresholdSplit:
    above_ids: list[int]  # most probable first
    above_probs: list[float]
    other_total: float
    other_count: int  # below-threshold tokens that can still be drawn (probability > 0)
    excluded_count: int  # tokens removed by top-p / top-k (probability exactly 0)
    other_sample_ids: list[int]
    other_sample_probs: list[float]
    vocabulary_size: int

    @property
    def above_total(self) -> float:
        return float(sum(self.above_probs))


def threshold_split(probs: torch.Tensor, threshold: float, other_top_k: int = 10) -> ThresholdSplit:
    """Split a distribution at ``threshold``: tokens with ``p >= threshold``
    are wheel segments; every other token with ``p > 0`` is "Other", described
    by its total, its count and its ``other_top_k`` most probable members."""
    if not (0 < threshold <= 1):
        raise ValueError("threshold must be in (0, 1]")
    above_mask = probs >= threshold
    above_ids = torch.nonzero(above_mask, as_tuple=True)[0]
    above_probs = probs[above_ids]
    order = torch.argsort(above_probs, descending=True)
    above_ids, above_probs = above_ids[order], above_probs[order]

    below = torch.where(above_mask, torch.zeros_like(probs), probs)
    other_count = int((below > 0).sum())
    excluded = int((probs <= 0).sum())
    k = min(max(other_top_k, 0), other_count)
    if k:
        sample_probs, sample_ids = torch.topk(below, k)
    else:
        sample_probs, sample_ids = torch.empty(0), torch.empty(0, dtype=torch.long)
    return ThresholdSplit(
        above_ids=above_ids.tolist(),
        above_probs=above_probs.tolist(),
        # Summed in float64, rounded to float32: the same total whichever
        # thread count reduces it (a cache hit and a batch differ in that).
        other_total=float(below.sum(dtype=torch.float64).float()),
        other_count=other_count,
        excluded_count=excluded,
        other_sample_ids=sample_ids.tolist(),
        other_sample_probs=sample_probs.tolist(),
        vocabulary_size=probs.numel(),
    )


def make_generator(seed: int | None) -> torch.Generator | None:
    if seed is None:
        return None
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return generator


def sample(probs: torch.Tensor, generator: torch.Generator | None = None) -> int:
    """Draw one token id in proportion to ``probs``."""
    return int(torch.multinomial(probs, 1, generator=generator))


def sample_other(probs: torch.Tensor, threshold: float, generator: torch.Generator | None = None) -> int:
    """Draw among the below-threshold tokens after renormalising them to sum to 1
    (the seed's backend logic for a spin that lands on "Other")."""
    below = torch.where(probs >= threshold, torch.zeros_like(probs), probs)
    total = below.sum()
    if not total > 0:
        raise ValueError("Other is empty at this threshold: every possible token is a wheel segment")
    return int(torch.multinomial(below / total, 1, generator=generator))


def rank_within_other(probs: torch.Tensor, threshold: float, token_id: int) -> int:
    """1-based rank of ``token_id`` among the below-threshold tokens (1 = most probable)."""
    p = probs[token_id]
    below = torch.where(probs >= threshold, torch.zeros_like(probs), probs)
    return int((below > p).sum()) + 1


def rank_of(probs: torch.Tensor, token_id: int) -> int:
    """1-based rank of ``token_id`` among all tokens (1 = the model's top choice).
    Ties count in the token's favour."""
    return int((probs > probs[token_id]).sum()) + 1
