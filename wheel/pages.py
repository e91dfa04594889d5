"""The wheel page: server-rendered shell, everything else is static/wheel/*.js
talking to the wheel API (/api/...).

The page carries its limits as JSON (``wheel-config``) so the JS never
hard-codes them: today they are the API's own limits; a classroom can later
narrow them by passing its own values to :func:`page_limits`.
"""

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from classrooms import policy


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
    return render(request, "wheel/wheel.html", {"wheel_config": page_limits(policy.page_overrides(request))})
