"""The class rules as a tool page shows them: its sliders narrowed to what
the class allows (the API holds the same rules on the server)."""

from __future__ import annotations

from .access import can_view
from .policy import PolicyError, Rules, acting_classroom, open_rules, rules_for, rules_for_object

def rules_for_request(request, obj=None) -> Rules:
    """The rules a page should show: those of the object it opens (a tool's
    session, fetched by the tool) if that is in a class and the user may see
    it, else the header's class."""
    user = request.user
    if obj is not None and obj.classroom_id and can_view(user, obj):
        return rules_for_object(obj)
    if not getattr(user, "is_authenticated", False):
        return open_rules()
    classroom = acting_classroom(request, user)
    try:
        return rules_for(user, classroom)
    except PolicyError:
        return open_rules()


def page_overrides(request, obj=None) -> dict | None:
    """A tool page's slider limits narrowed to the class (``wheel.pages.page_limits`` format)."""
    rules = rules_for_request(request, obj)
    if not rules.in_class:
        return None
    t = rules.threshold
    overrides = {
        "threshold": {"min": t, "max": t, "default": t} if rules.threshold_locked else {"default": t},
        "temperature": {
            "min": rules.temperature_min,
            "max": rules.temperature_max,
            "default": rules.default_temperature,
        },
        "other_top_k": rules.other_top_k,
        "default_model": rules.default_model,
        "classroom": {
            "id": rules.classroom_id,
            "name": rules.classroom_name,
            "lesson_id": rules.lesson_id,
            "lesson_title": rules.lesson_title,
            "lesson_instructions": rules.lesson_instructions,
            "allowed_models": list(rules.allowed_models),
            "threshold_locked": rules.threshold_locked,
            "top_p_enabled": rules.top_p_enabled,
            "predict_first": rules.predict_first,
            "seed": rules.seed,
        },
    }
    if not rules.top_p_enabled:
        overrides["top_p"] = {"min": 1.0, "max": 1.0, "default": 1.0}
    return overrides
