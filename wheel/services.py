"""What the wheel does, as plain functions: views validate and format,
these fetch, check, change and save. The model is reached only through
:mod:`modelworker.client`."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status

from classrooms import access, live, metering, policy
from common.errors import AppError, not_found
from common.rendering import render
from modelworker import client

from . import serializers as out
from .models import TokenEvent, WheelSession



def model_call(fn, *args, **kwargs):
    """Call the model worker. Its errors are AppErrors already (rendered as the
    API's error body); only an unknown-characters error keeps just the fields
    the wheel API documents."""
    try:
        return fn(*args, **kwargs)
    except client.ModelError as exc:
        if exc.code == "unknown_characters":
            raise AppError(exc.code, exc.message, exc.status, characters=exc.extra.get("characters", [])) from exc
        raise


# --------------------------------------------------------------------------- access


def get_session(session_id, user, touch=True, write=False) -> WheelSession:
    session = WheelSession.objects.live_one(session_id)
    if session is None or not access.can_view(user, session):
        raise not_found("Session", session_id)
    if write and not access.can_change(user, session):
        # The class's instructors read a student's session; only its owner changes it.
        raise AppError("read_only", "This session belongs to a student: you may read it, not change it.", 403)
    if touch:
        now = timezone.now()
        interval = timezone.timedelta(seconds=settings.WHEEL["TOUCH_INTERVAL_SECONDS"])
        if now - session.last_accessed >= interval:
            session.last_accessed = now
            WheelSession.objects.filter(pk=session.pk).update(last_accessed=now)
    return session


# --------------------------------------------------------------------------- state


def with_guesses(session: WheelSession, events=None) -> list[TokenEvent]:
    """The active tokens, each with the guess made before it (predict-then-reveal)
    as ``.guess``: a response whose serializer has ``token_history`` renders them."""
    events = list(session.active_events() if events is None else events)
    guesses = {tuple(g.context_ids): g for g in session.guesses.all()}
    context = list(session.prompt_token_ids)
    for event in events:
        event.guess = guesses.get(tuple(context))
        context.append(event.token_id)
    return events


def history(session: WheelSession, events=None) -> list[dict]:
    """:func:`with_guesses`, rendered."""
    return render(out.HistoryItemOut, with_guesses(session, events), many=True)


def derive_seed(story_seed: int, position: int) -> int:
    """The seed of the draw at ``position`` of a story told with ``story_seed``:
    the same on any machine and worker (no process state, no hash salt)."""
    digest = hashlib.sha256(f"{int(story_seed)}:{int(position)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1  # a non-negative 63-bit int


def session_params(session: WheelSession) -> dict:
    """The parameters of the session's last distribution; the site's defaults
    (from settings, through the class rules module) for what it never set."""
    return {**policy.wheel_params(policy.open_rules()), **(session.params or {})}


def context_ids(session: WheelSession, events=None) -> list[int]:
    if events is None:  # just the ids: a class's every wheel request reads them
        return [*session.prompt_token_ids, *session.active_events().values_list("token_id", flat=True)]
    return list(session.prompt_token_ids) + [e.token_id for e in events]


def require_prompt(session: WheelSession):
    if not session.prompt_token_ids:
        raise AppError(
            "no_prompt",
            "Set a prompt first: POST /api/sessions/{id}/set-prompt with {\"prompt\": ...}.",
            current_text=session.current_text,
        )


def cache_key(session: WheelSession) -> str:
    return f"wheel:{session.pk}"


# --------------------------------------------------------------------------- operations


def _check_active_session_cap(user):
    """A signed-in user holds at most LIMITS["ACTIVE_SESSIONS_PER_USER"] sessions in use
    (their sessions never expire; anonymous ones do, and their creation is throttled)."""
    limit = settings.LIMITS["ACTIVE_SESSIONS_PER_USER"]
    if not limit or not user or not user.is_authenticated:
        return
    since = timezone.now() - timezone.timedelta(seconds=settings.WHEEL["ANONYMOUS_TTL_SECONDS"])
    active = WheelSession.objects.filter(owner=user, last_accessed__gte=since).count()
    if active >= limit:
        raise AppError(
            "too_many_sessions",
            f"You have {active} wheel sessions in use (at most {limit}): delete one, or wait an hour for one to go idle.",
            status.HTTP_429_TOO_MANY_REQUESTS,
        )


def create_session(
    user, model_name: str | None, classroom=None, lesson=None, params=None, *, events=(), **fields
) -> WheelSession:
    """Every new session goes through here: the per-user cap, the model check,
    the usage count. ``fields`` start it elsewhere than empty (a fork, a live
    round's step) and ``events`` are copied into its history."""
    _check_active_session_cap(user)
    model_name = model_name or client.default_model()
    model_call(client.request, "load", model=model_name)
    signed_in = bool(user and user.is_authenticated)
    with transaction.atomic():
        session = WheelSession.objects.create(
            model_name=model_name,
            owner=user if signed_in else None,
            saved=signed_in,
            classroom=classroom,
            lesson=lesson,
            params=params or {},
            **fields,
        )
        copied = ("id", "session")
        TokenEvent.objects.bulk_create(
            TokenEvent(session=session, **{f.name: getattr(e, f.name) for f in TokenEvent._meta.concrete_fields if f.name not in copied})
            for e in events
        )
    metering.count(policy.rules_for_object(session), session.owner, model_name, "wheel", sessions=1)
    return session


def set_seed(session: WheelSession, seed: int | None) -> WheelSession:
    policy.check_active(policy.rules_for_object(session))
    session.seed = seed
    session.save(update_fields=["seed"])
    return session


def start_session(request, model_name: str | None, classroom_id=..., lesson_id=None, seed=...) -> WheelSession:
    """A new session where the request is made: the class (and lesson) the
    body names, else the class picked in the header; that class decides which
    models may be used and the starting parameters."""
    classroom, lesson, rules = policy.start(
        request.user, request=request, classroom_id=classroom_id, lesson_id=lesson_id
    )
    model_name = policy.check_model(rules, model_name)
    params = policy.wheel_params(rules) if classroom else None
    seed = rules.seed if seed is ... else seed  # a lesson's class seed unless the request gives one (null: none)
    return create_session(request.user, model_name, classroom, lesson, params, seed=seed)


def set_prompt(session: WheelSession, prompt: str) -> dict:
    policy.check_active(policy.rules_for_object(session))
    tokens = model_call(client.tokenize, session.model_name, prompt)
    if not tokens["ids"]:
        raise AppError("invalid_prompt", "The prompt is empty after tokenization.")
    now = timezone.now()
    with transaction.atomic():
        session.events.filter(undone_at__isnull=True).update(undone_at=now, removed_by="reset")
        session.initial_prompt = prompt
        session.prompt_token_ids = tokens["ids"]
        session.current_text = prompt
        session.last_accessed = now
        session.save(update_fields=["initial_prompt", "prompt_token_ids", "current_text", "last_accessed"])
    return {
        "session_id": session.id,
        "current_text": session.current_text,
        "token_count": len(tokens["ids"]),
        "message": "Prompt set successfully",
    }


def distribution(session: WheelSession, params: dict, other_top_k: int | None = None) -> dict:
    """The wheel at the session's context and ``params`` (from the session's KV cache)."""
    require_prompt(session)
    return model_call(
        client.distribution,
        session.model_name,
        context_ids(session),
        threshold=params["threshold"],
        temperature=params["temperature"],
        top_p=params["top_p"],
        other_top_k=params["other_top_k"] if other_top_k is None else other_top_k,
        cache_key=cache_key(session),
    )


def next_token_probs(session: WheelSession, sent: dict) -> dict:
    """The distribution at ``sent``'s parameters; values not sent take the
    class's (or the site's) defaults, sent ones are held to the class."""
    params = policy.wheel_params(policy.rules_for_object(session), **sent)
    result = distribution(session, params)
    # Remembered for append-token; no write when nothing changes (a new
    # session asking with the defaults already has them).
    if session_params(session) != params:
        session.params = params
        session.save(update_fields=["params"])
    return {
        "session_id": session.id,
        "model_name": session.model_name,
        "current_text": session.current_text,
        "threshold": params["threshold"],
        "temperature": params["temperature"],
        "top_p": params["top_p"],
        **result,
    }


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
            locked = WheelSession.objects.select_for_update().get(pk=session.pk)
            current = list(locked.events.filter(undone_at__isnull=True).order_by("position").values_list("pk", flat=True))
            if current != [e.pk for e in events] or locked.prompt_token_ids != session.prompt_token_ids:
                raise _conflict(locked)
            event = TokenEvent.objects.create(
                session=locked,
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
            locked.current_text = new_text
            locked.last_accessed = now
            locked.save(update_fields=["current_text", "last_accessed"])
            # Counted with the token, in one write transaction (the class's
            # appends queue for SQLite's one writer).
            metering.add_tokens(rules, session.owner, session.model_name, 1, tool="wheel")
    except IntegrityError:
        raise _conflict(session) from None
    # What was just written, without reading it back.
    session.current_text, session.last_accessed = locked.current_text, locked.last_accessed
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


def _conflict(session):
    return AppError(
        "conflict",
        "The session changed while this token was being chosen (another append or undo won); "
        "fetch the session and try again.",
        status.HTTP_409_CONFLICT,
        current_text=session.current_text,
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


def delete_session(session: WheelSession) -> dict:
    session_id = session.id
    session.delete()
    model_call(client.release, f"wheel:{session_id}")
    return {"message": "Session deleted successfully", "session_id": session_id}


def fork(session: WheelSession, user) -> WheelSession:
    """A copy for ``user`` to continue; it stays in the class and lesson when
    ``user`` is in that class (the one fork rule: classrooms.access)."""
    in_class = access.stays_in_class(user, session)
    copy = create_session(
        user,
        session.model_name,
        session.classroom if in_class else None,
        session.lesson if in_class else None,
        session.params,
        title=(f"{session.title} (fork)" if session.title else ""),
        initial_prompt=session.initial_prompt,
        current_text=session.current_text,
        prompt_token_ids=session.prompt_token_ids,
        forked_from=session,
        seed=session.seed,
        events=list(session.active_events()),
    )
    return copy


def open_at_context(user, classroom, lesson, *, model_name, token_ids, text, title) -> WheelSession:
    """A new session of ``user``'s in ``classroom``/``lesson`` that starts at
    ``token_ids`` (a live round's step), held to the class like any other."""
    rules = policy.rules_for(user, classroom, lesson)
    policy.check_active(rules)
    return create_session(
        user,
        policy.check_model(rules, model_name),
        classroom,
        lesson,
        policy.wheel_params(rules),
        title=title,
        initial_prompt=text,
        current_text=text,
        prompt_token_ids=list(token_ids),
        seed=rules.seed,
    )


def purge_expired() -> int:
    deleted, _ = WheelSession.objects.expired().delete()
    return deleted
