"""The header's class picker and role-aware links, on every page."""

from django import template

from .. import access, policy
from ..models import Lesson, Membership

register = template.Library()


@register.inclusion_tag("classrooms/includes/class_picker.html", takes_context=True)
def class_picker(context):
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or not getattr(user, "is_authenticated", False):
        return {"user": None, "request": request}
    memberships = (
        Membership.objects.filter(user=user, classroom__archived_at__isnull=True)
        .select_related("classroom")
        .order_by("classroom__name")
    )
    acting = policy.acting_classroom(request, user)
    # A lesson opened in the playground (classes/<id>/lessons/<id>/start/ with tool=playground).
    playground_lesson = None
    raw = request.GET.get("playground_lesson")
    if raw and raw.isdigit():
        lesson = Lesson.objects.select_related("classroom").filter(pk=int(raw)).first()
        if lesson is not None and access.role_in(user, lesson.classroom) is not None:
            playground_lesson = lesson
    return {
        "playground_lesson": playground_lesson,
        "playground_lesson_data": {
            "id": playground_lesson.pk,
            "classroom_id": playground_lesson.classroom_id,
            "title": playground_lesson.title,
            "prompt": playground_lesson.prompt,
            # The drawer's sliders show what this lesson allows, not its class.
            "rules": policy.rules_for(user, playground_lesson.classroom, playground_lesson).as_dict(),
        }
        if playground_lesson
        else None,
        "user": user,
        "memberships": list(memberships),
        "acting": acting,
        "next": request.get_full_path(),
        "csrf_token": context.get("csrf_token"),
    }


@register.filter
def percent(value, digits=1):
    """0.0512 -> "5.1%" (empty for None)."""
    if value is None or value == "":
        return ""
    return f"{float(value) * 100:.{int(digits)}f}%"
