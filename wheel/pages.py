"""The wheel page: server-rendered shell, everything else is static/wheel/*.js
talking to the wheel API (/api/...).

The page carries its limits as JSON (``wheel-config``) so the JS never
hard-codes them: today they are the API's own limits; a classroom can later
narrow them by passing its own values to :func:`page_limits`.
"""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from classrooms import page_rules, runs
from common.errors import AppError
from common.http import json_error
from modelworker import client

from .models import WheelSession


def page_limits(overrides=None):
    """The ranges the sliders offer, and the values they start at."""
    wheel = settings.WHEEL
    limits = {
        "threshold": {"min": 0.001, "max": 0.5, "step": 0.001, "default": wheel["DEFAULT_THRESHOLD"]},
        "temperature": {"min": 0.05, "max": wheel["MAX_TEMPERATURE"], "step": 0.05, "default": 1.0},
        "top_p": {"min": 0.05, "max": 1.0, "step": 0.01, "default": 1.0},
        "other_top_k": wheel["DEFAULT_OTHER_TOP_K"],
        "max_prompt_chars": wheel["MAX_PROMPT_CHARS"],
        "max_compare_tokens": wheel["MAX_COMPARE_TOKENS"],
        "default_model": settings.MODELWORKER["DEFAULT_MODEL"],
    }
    if overrides:
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(limits.get(key), dict):
                limits[key] = {**limits[key], **value}
            else:
                limits[key] = value
    return limits


@ensure_csrf_cookie  # the page's fetch() calls send X-CSRFToken from this cookie
def wheel_page(request):
    # In a class, the sliders offer only what the class allows (the API enforces it too).
    session = _session_or_none(request.GET.get("session"))
    return render(request, "wheel/wheel.html", {"wheel_config": page_limits(page_rules.page_overrides(request, session))})


def _session_or_none(session_id):
    if not session_id:
        return None
    try:
        return WheelSession.objects.select_related("classroom", "lesson", "owner").filter(pk=session_id).first()
    except (ValueError, TypeError, ValidationError):  # a malformed id is "no session"
        return None


@login_required
@require_GET
def step_offered(request, pk, position):
    """What the wheel offered before token ``position`` of a saved run was
    chosen (the replay page's wheel): recomputed from the token ids at the
    parameters of that choice (the model is deterministic, and the logits
    cache makes a replay cheap)."""
    session = runs.get_run("wheel", pk, request.user)
    events = list(session.active_events())
    if not 0 <= position < len(events):
        return json_error(AppError("not_found", f"This run has no step {position}.", 404))
    event = events[position]
    ids = list(session.prompt_token_ids) + [e.token_id for e in events[:position]]
    try:
        dist = client.distribution(
            session.model_name, ids, threshold=event.threshold, temperature=event.temperature, top_p=event.top_p, other_top_k=5
        )
    except client.ModelError as exc:
        return json_error(AppError("model_unavailable", exc.message, 503))
    return JsonResponse(
        {
            "position": position,
            "threshold": event.threshold,
            "temperature": event.temperature,
            "top_p": event.top_p,
            "above_threshold_tokens": dist["above_threshold_tokens"],
            "other_category": dist["other_category"],
        }
    )
