"""What the wheel does, as plain functions: views validate and format,
these fetch, check, change and save. The model is reached only through
:mod:`modelworker.client`."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework import status

from classrooms import access, metering, policy
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
        # On PostgreSQL, an append to this session in flight finishes first
        # (its token is then reset too) or sees the reset and is refused.
        WheelSession.objects.select_for_update().filter(pk=session.pk).values_list("pk").get()
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
