"""What the wheel does, as plain functions: views validate and format,
these fetch, check, change and save. The model is reached only through
:mod:`modelworker.client`."""

from __future__ import annotations

import csv
import io
import json

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status

from classrooms import live, policy
from modelworker import client
from modelworker.metrics import perplexity
from tokenwheel_site.errors import ApiError, not_found

from .models import TokenEvent, WheelSession

DEFAULT_PARAMS = {"threshold": 0.01, "temperature": 1.0, "top_p": 1.0, "other_top_k": 10}

_MODEL_ERRORS = {
    "unknown_model": "Invalid model name",
    "model_unavailable": "Model unavailable",
    "model_loading": "Model loading",
    "invalid_token": "Invalid token",
    "unknown_characters": "Invalid prompt",
    "empty_context": "No prompt set",
    "other_empty": "Other is empty",
    "generation_failed": "Generation failed",
    "worker_timeout": "Model worker unavailable",
    "worker_unavailable": "Model worker unavailable",
}


def model_call(fn, *args, **kwargs):
    """Call the model worker; turn its errors into the API's error body."""
    try:
        return fn(*args, **kwargs)
    except client.ModelError as exc:
        extra = {}
        if exc.code == "unknown_characters":
            extra["characters"] = exc.extra.get("characters", [])
        raise ApiError(_MODEL_ERRORS.get(exc.code, "Model error"), exc.message, exc.status, **extra) from exc


# --------------------------------------------------------------------------- access


def can_access(session: WheelSession, user) -> bool:
    """An anonymous session is reached by its unguessable id alone; a user's
    session by that user and staff (the classrooms app adds instructors)."""
    if session.owner_id is None:
        return True
    if not user or not user.is_authenticated:
        return False
    if user.is_staff or session.owner_id == user.id:
        return True
    return _instructor_can_see(session, user)


def _instructor_can_see(session, user) -> bool:
    return policy.can_view(user, session)


def get_session(session_id, user, touch=True, write=False) -> WheelSession:
    session = WheelSession.objects.live().filter(pk=session_id).first()
    if session is None or not can_access(session, user):
        raise not_found("Session", session_id)
    if write and not policy.can_change(user, session):
        # The class's instructors read a student's session; only its owner changes it.
        raise ApiError("Read-only", "This session belongs to a student: you may read it, not change it.", 403)
    if touch:
        now = timezone.now()
        interval = timezone.timedelta(seconds=settings.WHEEL["TOUCH_INTERVAL_SECONDS"])
        if now - session.last_accessed >= interval:
            session.last_accessed = now
            WheelSession.objects.filter(pk=session.pk).update(last_accessed=now)
    return session


# --------------------------------------------------------------------------- state


def event_dict(event: TokenEvent) -> dict:
    data = {
        "position": event.position,
        "token_id": event.token_id,
        "token_text": event.token_text,
        "probability": event.probability,
        "log_probability": event.log_probability,
        "category": event.category,
        "sampled_from_other": event.sampled_from_other,
        "method": event.method,
        "selected_at": event.selected_at,
    }
    return data


def history(session: WheelSession) -> list[dict]:
    return [event_dict(e) for e in session.active_events()]


def session_params(session: WheelSession) -> dict:
    return {**DEFAULT_PARAMS, **(session.params or {})}


def session_state(session: WheelSession) -> dict:
    token_history = history(session)
    return {
        "session_id": session.id,
        "model_name": session.model_name,
        "title": session.title,
        "initial_prompt": session.initial_prompt,
        "current_text": session.current_text,
        "token_history": token_history,
        "generation_count": len(token_history),
        "prompt_token_count": len(session.prompt_token_ids),
        "params": session_params(session),
        "saved": session.saved,
        "forked_from": session.forked_from_id,
        "created_at": session.created_at,
        "last_accessed": session.last_accessed,
    }


def context_ids(session: WheelSession, events=None) -> list[int]:
    events = session.active_events() if events is None else events
    return list(session.prompt_token_ids) + [e.token_id for e in events]


def _require_prompt(session: WheelSession):
    if not session.prompt_token_ids:
        raise ApiError(
            "No prompt set",
            "Set a prompt first: POST /api/sessions/{id}/set-prompt with {\"prompt\": ...}.",
            current_text=session.current_text,
        )


def _cache_key(session: WheelSession) -> str:
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
        raise ApiError(
            "Too many sessions",
            f"You have {active} wheel sessions in use (at most {limit}): delete one, or wait an hour for one to go idle.",
            status.HTTP_429_TOO_MANY_REQUESTS,
        )


def create_session(user, model_name: str | None, classroom=None, lesson=None, params=None) -> WheelSession:
    _check_active_session_cap(user)
    model_name = model_name or client.default_model()
    model_call(client.request, "load", model=model_name)
    session = WheelSession.objects.create(
        model_name=model_name,
        owner=user if user and user.is_authenticated else None,
        saved=bool(user and user.is_authenticated),
        classroom=classroom,
        lesson=lesson,
        params=params or {},
    )
    policy.count(policy.rules_for_object(session), session.owner, model_name, "wheel", sessions=1)
    return session


def set_prompt(session: WheelSession, prompt: str) -> dict:
    policy.check_active(policy.rules_for_object(session))
    tokens = model_call(client.tokenize, session.model_name, prompt)
    if not tokens["ids"]:
        raise ApiError("Invalid prompt", "The prompt is empty after tokenization.")
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


def next_token_probs(session: WheelSession, params: dict) -> dict:
    _require_prompt(session)
    ids = context_ids(session)
    result = model_call(
        client.distribution,
        session.model_name,
        ids,
        threshold=params["threshold"],
        temperature=params["temperature"],
        top_p=params["top_p"],
        other_top_k=params["other_top_k"],
        cache_key=_cache_key(session),
    )
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
    _require_prompt(session)
    rules = policy.rules_for_object(session)
    policy.check_active(rules)
    params = policy.merge_wheel_params(rules, sent=data, stored=session_params(session))
    events = list(session.active_events())
    if len(events) >= settings.WHEEL["MAX_GENERATED_TOKENS"]:
        raise ApiError("Too many tokens", f"A session holds at most {settings.WHEEL['MAX_GENERATED_TOKENS']} generated tokens.")
    ids = context_ids(session, events)

    if data.get("category") == "other":
        mode, method = "other", "other"
    elif data.get("category") == "sample":
        mode, method = "sample", "spun"
    else:
        mode, method = "token", "picked"
    token_id = data.get("token_id")
    warnings: list[str] = []
    if mode == "token":
        token_id = _resolve_token(session, token_id, data.get("token_text"), warnings)
    policy.charge(rules, session.owner, session.model_name, 1, tool="wheel")

    chosen = model_call(
        client.choose,
        session.model_name,
        ids,
        mode=mode,
        token_id=token_id,
        threshold=params["threshold"],
        temperature=params["temperature"],
        top_p=params["top_p"],
        seed=data.get("seed"),
        cache_key=_cache_key(session),
    )
    new_text = model_call(client.decode, session.model_name, ids + [chosen["token_id"]])
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
                selected_at=now,
            )
            locked.current_text = new_text
            locked.last_accessed = now
            locked.save(update_fields=["current_text", "last_accessed"])
    except IntegrityError:
        raise _conflict(session) from None
    session.refresh_from_db()
    if chosen["category"] == TokenEvent.CATEGORY_OTHER:
        policy.count(rules, session.owner, session.model_name, "wheel", other_picks=1)
    live.record_spin(session, event, ids)  # a spin on the class's live step reaches the projector

    appended = {
        "token_id": chosen["token_id"],
        "token_text": chosen["token_text"],
        "probability": chosen["probability"],
        "log_probability": chosen["log_probability"],
        "category": chosen["category"],
        "method": method,
        "sampled_from_other": mode == "other",
    }
    response = {
        "session_id": session.id,
        "previous_text": previous_text,
        "appended_token": appended,
        "current_text": session.current_text,
    }
    if mode == "sample":
        response["landed_in"] = chosen["category"]
    if "other_category_info" in chosen:
        response["other_category_info"] = chosen["other_category_info"]
    response["token_history"] = history(session)
    if warnings:
        response["warnings"] = warnings
    return response


def _conflict(session):
    return ApiError(
        "Conflict",
        "The session changed while this token was being chosen (another append or undo won); "
        "fetch the session and try again.",
        status.HTTP_409_CONFLICT,
        current_text=session.current_text,
    )


def _resolve_token(session, token_id, token_text, warnings: list) -> int:
    if token_id is None and token_text is None:
        raise ApiError(
            "Invalid request", 'Give one of "token_id", "token_text" or "category" ("other" or "sample").'
        )
    if token_text is not None:
        found = model_call(client.lookup, session.model_name, token_text)
        if found is None:
            raise ApiError(
                "Invalid token",
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
            raise ApiError(
                "Cannot undo",
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
    policy.count(rules, locked.owner, locked.model_name, "wheel", undos=1)
    removed = event_dict(last)
    removed.pop("selected_at")
    removed.pop("position")
    return {
        "session_id": locked.id,
        "previous_text": previous_text,
        "removed_token": removed,
        "current_text": locked.current_text,
        "token_history": [event_dict(e) for e in remaining],
        "message": "Last token removed successfully",
    }


def delete_session(session: WheelSession) -> dict:
    session_id = session.id
    session.delete()
    model_call(client.release, f"wheel:{session_id}")
    return {"message": "Session deleted successfully", "session_id": session_id}


def statistics(session: WheelSession) -> dict:
    events = list(session.active_events())
    n = len(events)
    log_probs = [e.log_probability for e in events]

    other = sum(1 for e in events if e.category == TokenEvent.CATEGORY_OTHER)
    return {
        "session_id": session.id,
        "generation_count": n,
        "average_probability": (sum(e.probability for e in events) / n) if n else None,
        "other_count": other,
        "other_frequency": (other / n) if n else None,
        "undo_count": session.events.filter(removed_by="undo").count(),
        "perplexity": perplexity(log_probs) if n and None not in log_probs else None,
        "spun_count": sum(1 for e in events if e.method == "spun"),
        "picked_count": sum(1 for e in events if e.method == "picked"),
        "other_draw_count": sum(1 for e in events if e.method == "other"),
    }


def fork(session: WheelSession, user) -> WheelSession:
    _check_active_session_cap(user)
    # The fork stays in the class (and lesson) if its new owner is in that class.
    in_class = session.classroom is not None and policy.role_in(user, session.classroom) is not None
    with transaction.atomic():
        copy = WheelSession.objects.create(
            owner=user if user and user.is_authenticated else None,
            classroom=session.classroom if in_class else None,
            lesson=session.lesson if in_class else None,
            model_name=session.model_name,
            title=(f"{session.title} (fork)" if session.title else ""),
            initial_prompt=session.initial_prompt,
            current_text=session.current_text,
            prompt_token_ids=session.prompt_token_ids,
            params=session.params,
            saved=bool(user and user.is_authenticated),
            forked_from=session,
        )
        TokenEvent.objects.bulk_create(
            [
                TokenEvent(
                    session=copy,
                    **{
                        f.name: getattr(e, f.name)
                        for f in TokenEvent._meta.concrete_fields
                        if f.name not in ("id", "session")
                    },
                )
                for e in session.active_events()
            ]
        )
    policy.count(policy.rules_for_object(copy), copy.owner, copy.model_name, "wheel", sessions=1)
    return copy


def compare(session: WheelSession, data: dict) -> dict:
    _require_prompt(session)
    params = session_params(session)
    ids = context_ids(session)
    rules = policy.rules_for_object(session)
    policy.check_active(rules)
    temperature = policy.check_temperature(rules, data.get("temperature", params["temperature"]))
    top_p = policy.check_top_p(rules, data.get("top_p", params["top_p"]))
    policy.charge(rules, session.owner, session.model_name, 2 * data["n"], tool="wheel")
    greedy = model_call(client.continue_text, session.model_name, ids, n=data["n"], mode="greedy")
    sampled = model_call(
        client.continue_text,
        session.model_name,
        ids,
        n=data["n"],
        mode="sample",
        temperature=temperature,
        top_p=top_p,
        seed=data.get("seed"),
    )
    return {
        "session_id": session.id,
        "current_text": session.current_text,
        "n": data["n"],
        "temperature": temperature,
        "top_p": top_p,
        "greedy": greedy,
        "sampled": sampled,
    }


EXPORT_COLUMNS = [
    "position",
    "token_id",
    "token_text",
    "probability",
    "log_probability",
    "category",
    "method",
    "sampled_from_other",
    "threshold",
    "temperature",
    "top_p",
    "selected_at",
]


def export(session: WheelSession, fmt: str) -> tuple[str, str, str]:
    """``(body, content_type, filename)`` of the session's history."""
    events = list(session.active_events())
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(EXPORT_COLUMNS)
        for e in events:
            writer.writerow([getattr(e, c).isoformat() if c == "selected_at" else getattr(e, c) for c in EXPORT_COLUMNS])
        return out.getvalue(), "text/csv; charset=utf-8", f"token-wheel-{session.id}.csv"
    state = session_state(session)
    state["token_history"] = [
        {c: (getattr(e, c).isoformat() if c == "selected_at" else getattr(e, c)) for c in EXPORT_COLUMNS} for e in events
    ]
    state["statistics"] = statistics(session)
    body = json.dumps(state, default=str, indent=2, ensure_ascii=False)
    return body, "application/json", f"token-wheel-{session.id}.json"


def purge_expired() -> int:
    deleted, _ = WheelSession.objects.expired().delete()
    return deleted
