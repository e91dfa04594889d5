"""A step of the wheel: append a token (picked, typed, drawn within Other or
spun) and undo the last one. Both change a session's history, and both
check, inside the write transaction, that nothing else changed it first."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from rest_framework import status

from classrooms import live, metering, policy
from common.errors import AppError
from common.rendering import render
from modelworker import client

from . import serializers as out
from .models import TokenEvent, WheelSession
from .services import cache_key, context_ids, model_call, require_prompt, session_params, with_guesses


def derive_seed(story_seed: int, position: int) -> int:
    """The seed of the draw at ``position`` of a story told with ``story_seed``:
    the same on any machine and worker (no process state, no hash salt)."""
    digest = hashlib.sha256(f"{int(story_seed)}:{int(position)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1  # a non-negative 63-bit int


def append_token(session: WheelSession, data: dict) -> dict:
    """Append a token chosen by id, by text, by a draw within Other or by a
    spin of the whole wheel, judged against the distribution the student was
    shown (the session's last parameters unless the body gives others)."""
    require_prompt(session)
    rules = policy.rules_for_object(session)
    policy.check_active(rules)
    params = policy.merge_wheel_params(rules, sent=data, stored=session_params(session))
    events = list(session.active_events())
    if len(events) >= settings.WHEEL["MAX_GENERATED_TOKENS"]:
        raise AppError("too_many_tokens", f"A session holds at most {settings.WHEEL['MAX_GENERATED_TOKENS']} generated tokens.")
    ids = context_ids(session, events)

    if data.get("category") == "other":
        mode, method = "other", "other"
    elif data.get("category") == "sample":
        mode, method = "sample", "spun"
    else:
        mode, method = "token", "picked"
    seed = data.get("seed")
    if seed is None and mode != "token" and session.seed is not None:
        seed = derive_seed(session.seed, len(events))  # same seed, same story
    token_id = data.get("token_id")
    warnings: list[str] = []
    if mode == "token":
        token_id = _resolve_token(session, token_id, data.get("token_text"), warnings)
    metering.check_quota(rules, session.owner, session.model_name, 1, tool="wheel")

    chosen = model_call(
        client.choose,
        session.model_name,
        ids,
        mode=mode,
        token_id=token_id,
        threshold=params["threshold"],
        temperature=params["temperature"],
        top_p=params["top_p"],
        seed=seed,
        cache_key=cache_key(session),
        # The student's next request is the wheel after this token: the model
        # starts on it now, not when it comes in behind the class's.
        prefetch=True,
    )
    new_text = chosen.pop("text")
    previous_text = session.current_text
    now = timezone.now()
    try:
        with transaction.atomic():
            # The history is still the one the token was chosen for: same
            # prompt, same newest active token. One row read under the write
            # lock, not the whole history: under a class, every statement
            # there waits to get the interpreter lock back, and SQLite's one
            # writer waits with it (see _history_head).
            now_prompt, now_text, now_head = _history_head(session.pk)
            if now_head != (events[-1].pk if events else None) or now_prompt != session.prompt_token_ids:
                raise _conflict(now_text)
            event = TokenEvent.objects.create(
                session=session,
                position=len(events),
                token_id=chosen["token_id"],
                token_text=chosen["token_text"],
                probability=chosen["probability"],
                log_probability=chosen["log_probability"],
                category=chosen["category"],
                sampled_from_other=mode == "other",
                method=method,
                other_rank=(chosen.get("other_category_info") or {}).get("selected_token_rank"),
                threshold=params["threshold"],
                temperature=params["temperature"],
                top_p=params["top_p"],
                greedy_token_id=chosen.get("greedy_token_id"),
                seed=seed if mode != "token" else None,
                selected_at=now,
            )
            WheelSession.objects.filter(pk=session.pk).update(current_text=new_text, last_accessed=now)
            # Counted with the token, in one write transaction (the class's
            # appends queue for SQLite's one writer).
            metering.add_tokens(rules, session.owner, session.model_name, 1, tool="wheel")
    except IntegrityError:
        raise _conflict(WheelSession.objects.values_list("current_text", flat=True).get(pk=session.pk)) from None
    session.current_text, session.last_accessed = new_text, now
    if chosen["category"] == TokenEvent.CATEGORY_OTHER:
        metering.count(rules, session.owner, session.model_name, "wheel", other_picks=1)
    live.record_spin(session, event, ids)  # a spin on the class's live step reaches the projector
    live.path_grew(session)  # the class tree of its lesson grows

    response = {
        "session_id": session.id,
        "previous_text": previous_text,
        "appended_token": render(out.AppendedTokenOut, event),
        "current_text": session.current_text,
    }
    if mode == "sample":
        response["landed_in"] = chosen["category"]
    if "other_category_info" in chosen:
        response["other_category_info"] = chosen["other_category_info"]
    # The history checked unchanged inside the transaction, plus the new token
    # (rendered once, by the view's AppendTokenOut).
    response["token_history"] = with_guesses(session, [*events, event])
    if warnings:
        response["warnings"] = warnings
    return response


def _history_head(session_pk):
    """``(prompt ids, current text, pk of the newest active token or None)``
    of a session, in one row. The newest active token fixes the whole active
    history: tokens are only appended at the end, undone from the end or all
    reset, and a new token's pk is above every earlier one's, so the same
    newest token means the same tokens before it. A reset to the same empty
    history shows in the prompt. Call it inside the write transaction."""
    newest = TokenEvent.objects.filter(session=OuterRef("pk"), undone_at__isnull=True).order_by("-pk").values("pk")[:1]
    # FOR UPDATE: on PostgreSQL an undo or reset of this session waits for
    # this transaction (SQLite's one writer does that already).
    rows = WheelSession.objects.select_for_update().filter(pk=session_pk)
    return rows.values_list("prompt_token_ids", "current_text", Subquery(newest)).get()


def _conflict(current_text):
    return AppError(
        "conflict",
        "The session changed while this token was being chosen (another append or undo won); "
        "fetch the session and try again.",
        status.HTTP_409_CONFLICT,
        current_text=current_text,
    )


def _resolve_token(session, token_id, token_text, warnings: list) -> int:
    if token_id is None and token_text is None:
        raise AppError(
            "invalid_request", 'Give one of "token_id", "token_text" or "category" ("other" or "sample").'
        )
    if token_text is not None:
        found = model_call(client.lookup, session.model_name, token_text)
        if found is None:
            raise AppError(
                "invalid_token",
                f"{token_text!r} is not a single token of {session.model_name}'s vocabulary.",
            )
        if token_id is not None and token_id != found:
            # Token ids differ between vocabularies (the seed's examples are
            # GPT-2's); the text is what the student chose, so it wins, and the
            # response says so.
            warnings.append(
                f"token_id {token_id} does not match token_text {token_text!r} in {session.model_name} "
                f"(whose id for it is {found}); the token_text was used."
            )
        return found
    return token_id


def undo(session: WheelSession) -> dict:
    rules = policy.rules_for_object(session)
    policy.check_active(rules)
    with transaction.atomic():
        locked = WheelSession.objects.select_for_update().get(pk=session.pk)
        events = list(locked.events.filter(undone_at__isnull=True).order_by("position"))
        if not events:
            raise AppError(
                "cannot_undo",
                "No generated tokens to remove. Only initial prompt remains.",
                current_text=locked.current_text,
            )
        last = events[-1]
        previous_text = locked.current_text
        last.undone_at = timezone.now()
        last.removed_by = "undo"
        last.save(update_fields=["undone_at", "removed_by"])
        remaining = events[:-1]
        if remaining:
            locked.current_text = model_call(client.decode, locked.model_name, context_ids(locked, remaining))
        else:
            locked.current_text = locked.initial_prompt
        locked.last_accessed = timezone.now()
        locked.save(update_fields=["current_text", "last_accessed"])
    metering.count(rules, locked.owner, locked.model_name, "wheel", undos=1)
    return {
        "session_id": locked.id,
        "previous_text": previous_text,
        "removed_token": render(out.RemovedTokenOut, last),
        "current_text": locked.current_text,
        "token_history": with_guesses(locked, remaining),
        "message": "Last token removed successfully",
    }
