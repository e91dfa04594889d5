"""Predict, then reveal: a student commits a guess for the next token before
the wheel is shown; the guess is judged against the distribution they then
see (its probability, its rank, segment or Other) and scored per session."""

from __future__ import annotations

import random

from django.db import IntegrityError, transaction

from classrooms import live, metering, policy
from common.errors import AppError
from modelworker import client

from . import serializers as out
from .models import Guess, WheelSession
from .services import cache_key, context_ids, distribution, model_call, require_prompt, session_params

OPTIONS_TOP = 5
OPTIONS_DECOYS = 3


def options(session: WheelSession) -> dict:
    """The top tokens shuffled with a few decoys from lower down: stable for
    the same session and step, so a reload offers the same list."""
    dist = distribution(session, session_params(session), other_top_k=10)
    ids = context_ids(session)
    ranked = dist["above_threshold_tokens"] + dist["other_category"]["sample_tokens"]
    rng = random.Random(f"{session.pk}:{len(ids)}")
    lower = ranked[OPTIONS_TOP:]
    picked = ranked[:OPTIONS_TOP] + rng.sample(lower, min(OPTIONS_DECOYS, len(lower)))
    rng.shuffle(picked)
    return {"position": len(ids) - len(session.prompt_token_ids), "options": [
        {"token_id": t["token_id"], "token_text": t["token_text"]} for t in picked
    ]}


def _resolve(session: WheelSession, data: dict) -> tuple[int, str, str]:
    """(token id, what was typed, a note) for a guess given by id or by text."""
    if "token_id" in data:
        return data["token_id"], "", ""
    typed = data["token_text"]
    found = model_call(client.lookup, session.model_name, typed)
    if found is not None:
        return found, typed, ""
    tokens = model_call(client.tokenize, session.model_name, typed)
    if not tokens["ids"]:
        raise AppError("invalid_guess", f"{typed!r} has no token in {session.model_name}'s vocabulary.")
    first = tokens["tokens"][0] if tokens.get("tokens") else None
    shown = first if first is not None else model_call(client.decode, session.model_name, tokens["ids"][:1])
    note = (
        f"{typed!r} is {len(tokens['ids'])} tokens for this model; your guess is its first token, {shown!r}."
    )
    return tokens["ids"][0], typed, note


def guess(session: WheelSession, user, data: dict) -> dict:
    require_prompt(session)
    rules = policy.rules_for_object(session)
    policy.check_active(rules)
    ids = context_ids(session)
    params = session_params(session)
    token_id, typed, note = _resolve(session, data)
    found = model_call(
        client.rank,
        session.model_name,
        ids,
        token_id,
        threshold=params["threshold"],
        temperature=params["temperature"],
        top_p=params["top_p"],
        cache_key=cache_key(session),
    )
    try:
        with transaction.atomic():  # a savepoint: a refused guess leaves the request's transaction usable
            made = Guess.objects.create(
                session=session,
                position=len(ids) - len(session.prompt_token_ids),
                context_ids=ids,
                token_id=token_id,
                token_text=found["token_text"],
                typed_text=typed[:200],
                probability=found["probability"],
                rank=found["rank"],
                category=found["category"],
                top_token_id=found["top_token"]["token_id"],
            )
    except IntegrityError:
        raise AppError(
            "already_guessed", "You already guessed this step: spin or pick to see the next one.", 409
        ) from None
    metering.count(rules, session.owner, session.model_name, "wheel", guesses=1)
    live.record_guess(session, made, ids)
    body = out.GuessOut(made).data
    body["note"] = note
    return {"guess": body, "score": score(session)}


def score(session: WheelSession) -> dict:
    """How often the guesses were the model's top token, in its top 3, above
    the threshold; and the average probability the model gave them."""
    guesses = list(session.guesses.all())
    n = len(guesses)
    return {
        "guesses": n,
        "top1": sum(g.rank == 1 for g in guesses),
        "top3": sum(g.rank <= 3 for g in guesses),
        "above_threshold": sum(g.category == "above_threshold" for g in guesses),
        "average_probability": (sum(g.probability for g in guesses) / n) if n else None,
    }
