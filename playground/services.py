"""What the playground does, as plain functions (the HTTP endpoint, saved runs,
model readiness). The model is reached only through :mod:`modelworker.client`."""

from __future__ import annotations

import uuid

from django.core.cache import cache

from classrooms import access, policy, runkinds
from common.errors import AppError, not_found
from modelworker import client

from .models import PlaygroundRun

STREAM_CACHE_PREFIX = "playground:stream:"
STREAM_TTL_SECONDS = 3600

READY = "ready"
LOADING = ("loading", "not_loaded")


# --------------------------------------------------------------------------- live streams


def stream_cache_key(stream_id: str) -> str:
    return f"{STREAM_CACHE_PREFIX}{stream_id}"


async def aregister_stream(stream_id: str, model: str) -> None:
    """A live websocket stream can be named as ``session_id`` of the HTTP endpoint."""
    await cache.aset(stream_cache_key(stream_id), {"model": model}, STREAM_TTL_SECONDS)


async def aforget_stream(stream_id: str) -> None:
    await cache.adelete(stream_cache_key(stream_id))


# --------------------------------------------------------------------------- model readiness


def model_entry(model: str, models: list[dict]) -> dict | None:
    return next((m for m in models if m["id"] == model), None)


def readiness_error(model: str, models: list[dict]) -> tuple[str, str] | None:
    """``None`` when ``model`` is ready, else ``(code, message)`` for a person.
    A model that is not loaded yet is asked to load (without waiting)."""
    entry = model_entry(model, models)
    if entry is None:
        return "unknown_model", f"There is no model called {model!r}."
    state = entry.get("status")
    if state == READY:
        return None
    if state in LOADING:
        _kick_loading(model)
        return "model_loading", f"Model {entry['name']} is initializing, try again in a few seconds."
    return "model_unavailable", f"Model {entry['name']} is unavailable: {entry.get('reason') or 'unknown reason'}."


def _kick_loading(model: str) -> None:
    preload = getattr(client.backend(), "preload", None)
    if preload is not None:  # the embedded engine; remote workers load on their own
        try:
            preload(model)
        except client.ModelError:
            pass


# --------------------------------------------------------------------------- POST /api/generate-next-token


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False


def resolve_session(session_id: str, user):
    """The model (and class rules) behind ``session_id``, which may be

    1. a wheel session id (its model; anonymous ones by id alone),
    2. a saved playground run id (visible to its owner, its class's instructors, staff),
    3. the ``stream_id`` of a live playground websocket (from its ``hello``).

    Anything else, or something the user may not see, does not exist (404)."""
    session_id = str(session_id).strip()
    if _is_uuid(session_id):
        # A run of any tool (a wheel session, a saved playground run), found
        # through what the tools registered with classrooms.
        for kind in runkinds.with_hook("find_live"):
            obj = kind.find_live(session_id)
            if obj is not None and access.can_view(user, obj):
                return obj.model_name, policy.rules_for_object(obj)
    stream = cache.get(stream_cache_key(session_id)) if len(session_id) <= 64 else None
    if stream:
        return stream["model"], policy.open_rules()
    raise not_found("Session", session_id)


def generate_next_token(user, data: dict) -> dict:
    model, rules = resolve_session(data["session_id"], user)
    temperature = policy.check_temperature(rules, data.get("temperature"))
    top_p = policy.check_top_p(rules, data.get("top_p"))
    window = data.get("context_window") or rules.context_window
    if rules.limits_apply:
        window = min(window, rules.context_window)

    try:
        problem = readiness_error(model, client.models())
    except AppError as exc:
        raise _not_initialized(exc.code, exc.message) from exc
    if problem is not None:
        raise _not_initialized(*problem)

    try:
        ids = client.tokenize(model, data["context"])["ids"]
    except client.ModelError as exc:
        if exc.code == "unknown_characters":
            chars = exc.extra.get("characters", [])
            raise AppError(
                "unknown_characters",
                f"The tokenizer of {model} cannot represent these characters: {chars!r}.",
                400,
                title=f"Unknown characters: {chars!r}",
                # JSON-safe: a lone surrogate cannot be written as UTF-8, so it is escaped.
                characters=[_printable(c) for c in chars],
                code_points=[f"U+{ord(c):04X}" for c in chars],
            ) from exc
        raise _generation_failed(exc.message) from exc
    if not ids:
        raise AppError("invalid_request", "context: there is no text to continue.")

    try:
        result = client.request(
            "next_token",
            model=model,
            ids=ids,
            temperature=temperature,
            top_k=data.get("top_k") or 0,
            top_p=top_p,
            context_window=window,
            greedy=bool(data.get("greedy")),
            seed=data.get("seed"),
            top_n=10,
        )
    except client.ModelError as exc:
        if exc.status == 503 and exc.code in ("model_loading", "model_unavailable"):
            raise _not_initialized(exc.code, exc.message) from exc
        raise _generation_failed(exc.message) from exc
    except Exception as exc:  # noqa: BLE001 - any failure of the forward pass is the seed's 500
        raise _generation_failed(str(exc)) from exc

    return {**result, "model": model}  # rendered by serializers.GenerateNextTokenOut


def _printable(ch: str) -> str:
    try:
        ch.encode("utf-8")
        return ch
    except UnicodeEncodeError:
        return ch.encode("unicode_escape").decode("ascii")


def _not_initialized(code: str, message: str) -> AppError:
    """The seed answers a model that is not ready with 400 "Model not initialized"."""
    return AppError(code, message, 400, title="Model not initialized")


def _generation_failed(reason: str) -> AppError:
    message = f"Generation failed: {reason.removeprefix('Generation failed: ')}"
    return AppError("generation_failed", message, 500, title=message)


# --------------------------------------------------------------------------- saved runs


def visible_runs(user):
    return PlaygroundRun.objects.filter(access.visible_q(user)).select_related("owner")


def get_run(user, run_id) -> PlaygroundRun:
    run = PlaygroundRun.objects.select_related("classroom", "lesson", "owner").filter(pk=run_id).first()
    if run is None or not access.can_view(user, run):
        raise not_found("Run", run_id)
    return run


def save_run(user, state: dict, title: str = "") -> PlaygroundRun:
    """Store a stream's state (``playground.run.Run.snapshot``) for ``user``."""
    generated_text = "".join(t["token"] for t in state["tokens"])
    return PlaygroundRun.objects.create(
        owner=user,
        classroom_id=state.get("classroom_id"),
        lesson_id=state.get("lesson_id"),
        title=title or state["text"][:60],
        model_name=state["model"],
        input_text=state["text"],
        prompt_token_ids=state["prompt_ids"],
        tokens=state["tokens"],
        settings=state["settings"],
        finished_reason=state.get("finished_reason") or "",
        generated_text=generated_text,
    )

