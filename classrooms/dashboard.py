"""The class dashboard: each student's runs (read-only), and per lesson the
tokens students chose at each step."""

from collections import defaultdict

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from . import privacy, runkinds, runs
from .access import classroom_for_manager
from .models import Membership

MAX_STEPS = 12


def lesson_steps(classroom, lesson, max_steps=MAX_STEPS):
    """Per step, the tokens the class chose there (from the tools that keep steps)."""
    steps = []
    for kind in runkinds.with_hook("lesson_steps"):
        steps += kind.lesson_steps(classroom, lesson, max_steps)
    return steps


@login_required
def dashboard(request, pk):
    classroom = classroom_for_manager(request.user, pk)
    students = list(classroom.students())
    all_runs = runs.runs_of(classroom=classroom)
    by_owner = defaultdict(list)
    for row in all_runs:
        by_owner[row["owner"].pk].append(row)
    student_filter = request.GET.get("student", "")
    roster = []
    for m in students:
        rows = by_owner.get(m.user_id, [])
        roster.append(
            {
                "membership": m,
                "user": m.user,
                "runs": rows,
                "tokens": sum(r["length"] for r in rows),
                "last": rows[0]["created_at"] if rows else None,
            }
        )
    # Runs of people no longer in the class (removed students) stay visible to its instructors.
    member_ids = set(Membership.objects.filter(classroom=classroom).values_list("user_id", flat=True))
    former = [r for r in all_runs if r["owner"].pk not in member_ids]
    lessons = [{"lesson": lesson, "steps": lesson_steps(classroom, lesson)} for lesson in classroom.lessons.all()]
    return render(
        request,
        "classrooms/dashboard.html",
        {
            "classroom": classroom,
            "roster": roster,
            "former": former,
            "deleted": privacy.deleted_students_in(classroom),
            "lessons": lessons,
            "student_filter": student_filter,
            "max_steps": MAX_STEPS,
        },
    )
