"""The field names of the engine's answers, each written once here.

They are the wheel API's names (``seeds/token-wheel-api.md``) and the
playground's; web code passes them on unchanged, so renaming one here
renames it in the API.
"""

from __future__ import annotations

from ..metrics import category, log_probability


def token(token_id: int, text: str, probability: float) -> dict:
    """A token as a continuation lists it."""
    return {"token_id": token_id, "token_text": text, "probability": probability}


def wheel_token(token_id: int, text: str, probability: float) -> dict:
    """A token of the wheel: with its log-probability."""
    return {**token(token_id, text, probability), "log_probability": log_probability(probability)}


def choice(token_id: int, text: str, probability: float, threshold: float) -> dict:
    """The token a spin or a choice picked, and the wheel category it falls in."""
    return {**wheel_token(token_id, text, probability), "category": category(probability, threshold)}


def other_info(total: float, count: int, rank: int) -> dict:
    """Where a token picked from Other stands within it."""
    return {"other_category_info": {"total_probability": total, "token_count": count, "selected_token_rank": rank}}


def distribution(above: list[dict], other_total: float, other_count: int, other_samples: list[dict],
                 above_total: float, excluded: int, vocabulary_size: int) -> dict:
    """The wheel: its segments and the one Other segment."""
    return {
        "above_threshold_tokens": above,
        "other_category": {"total_probability": other_total, "token_count": other_count, "sample_tokens": other_samples},
        "total_above_threshold_probability": above_total,
        "excluded_by_top_p": excluded,
        "vocabulary_size": vocabulary_size,
    }


def continuation(tokens: list[dict], text: str) -> dict:
    return {"tokens": tokens, "text": text}


def top_entry(token_id: int, text: str, probability: float) -> dict:
    """One bar of the playground's top-N."""
    return {"token_id": token_id, "token": text, "prob": probability}


def playground_step(chosen: dict, top: list[dict], context_start: int, context_tokens: int,
                    context_text: str, eos: bool) -> dict:
    """One step of a playground stream: the token, the bars, what the model saw."""
    return {
        **chosen,
        "top": top,
        "context_start": context_start,
        "context_tokens": context_tokens,
        "context_text": context_text,
        "eos": eos,
    }
