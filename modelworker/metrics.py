"""Pure-Python measures of chosen tokens. No torch here: web processes that
talk to remote model workers import this without loading a model library."""

from __future__ import annotations

import math


def category(probability: float, threshold: float) -> str:
    return "above_threshold" if probability >= threshold else "other"


def log_probability(probability: float) -> float | None:
    """Natural log, or None for an impossible token (JSON has no -inf)."""
    return math.log(probability) if probability > 0 else None


def perplexity(log_probs: list[float]) -> float | None:
    """``exp(-mean(log p))`` over the generated tokens; None when there are none."""
    if not log_probs:
        return None
    return math.exp(-sum(log_probs) / len(log_probs))
