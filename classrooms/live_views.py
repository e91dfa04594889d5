"""Pages and actions of the live class wheel (the socket is in consumers.py)."""

import functools

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from common.errors import AppError
from common.http import json_error
from modelworker import client

from . import live, policy, runkinds, tree
from .access import classroom_for_manager, classroom_for_member, lesson_in
from .models import LiveRound


def _open_round_or_404(classroom):
    current = live.current_round(classroom)
    if current is None:
        raise Http404("No live round is open in this class")
    return current


@login_required
def live_page(request, pk):
    """The projector view. ``?lesson=<id>`` opens that lesson's first step
    (or keeps its open round)."""
    classroom = classroom_for_manager(request.user, pk)
    lesson_id = request.GET.get("lesson")
    current = live.current_round(classroom)
    error = None
    if lesson_id:
        try:
            lesson = lesson_in(classroom, int(lesson_id))
        except ValueError:
            raise Http404 from None
        try:
            current = live.open_round(classroom, lesson, request.user)
        except AppError as exc:
            error = exc.message
    state = None
    if current is not None:
        rules = policy.build_rules(classroom, current.lesson, policy.INSTRUCTOR)
        state = live.round_state(current, other_top_k=rules.other_top_k)
    return render(
        request,
        "classrooms/live.html",
        {"classroom": classroom, "round": current, "state": state, "lessons": classroom.lessons.all(), "error": error},
    )


@login_required
@require_GET
def live_state(request, pk):
    classroom = classroom_for_manager(request.user, pk)
    current = live.current_round(classroom)
    if current is None:
        return JsonResponse({"round": None})
    rules = policy.build_rules(classroom, current.lesson, policy.INSTRUCTOR)
    return JsonResponse(live.round_state(current, other_top_k=rules.other_top_k))


def _round_action(act):
    """A POST of the class's instructors on its open round (404 when none is
    open). ``act(request, round)`` returns what it did, said on the live page
    (or in JSON to a script), or a response of its own."""

    @login_required
    @require_POST
    @functools.wraps(act)
    def view(request, pk):
        classroom = classroom_for_manager(request.user, pk)
        done = act(request, _open_round_or_404(classroom))
        if not isinstance(done, str):
            return done
        if "application/json" in request.headers.get("Accept", ""):
            current = live.current_round(classroom)
            return JsonResponse({"message": done, "round": live.round_summary(current) if current else None})
        messages.success(request, done)
        return redirect("classrooms:live", pk=classroom.pk)

    return view


def _refused(request, round_, message):
    messages.error(request, message)
    return redirect("classrooms:live", pk=round_.classroom_id)


def _pushed(round_) -> str:
    live.push(round_)
    return f"Step {round_.step + 1} pushed to every student's screen."


@_round_action
def live_reset(request, current):
    live.reset_round(current, request.user)
    return "Round reset: the chart starts again from zero."


@_round_action
def live_next(request, current):
    try:
        token_id = int(request.POST.get("token_id", ""))
    except ValueError:
        return _refused(request, current, "Choose the token the class moves on with.")
    try:
        new = live.next_step(current, token_id, request.user)
    except AppError as exc:
        return _refused(request, current, exc.message)
    if request.POST.get("push"):
        return _pushed(new)
    return f"Moved on to step {new.step + 1}."


@_round_action
def live_push(request, current):
    return _pushed(current)


@_round_action
def live_end(request, current):
    live.end_round(current)
    return "Live wheel closed."


@login_required
@require_POST
def live_round_open(request, pk, round_pk):
    """A student opens the pushed step: a new wheel session of theirs at that context."""
    classroom = classroom_for_member(request.user, pk)
    round_ = get_object_or_404(LiveRound.objects.select_related("lesson", "classroom"), pk=round_pk, classroom=classroom)
    title = f"{round_.lesson.title} · step {round_.step + 1}" if round_.step else round_.lesson.title
    try:
        url = _open_at(request.user, classroom, round_.lesson, round_.model_name, round_.token_ids, round_.context_text, title)
    except AppError as exc:
        messages.error(request, exc.message)
        return redirect("classrooms:detail", pk=classroom.pk)
    policy.set_acting_classroom(request, classroom)
    return redirect(url)


def _open_at(user, classroom, lesson, model_name, token_ids, text, title) -> str:
    """A new run of the user's at this context, in the tool that opens contexts (the wheel)."""
    (tool,) = runkinds.with_hook("open_at")
    return tool.open_at(user, classroom, lesson, model_name=model_name, token_ids=token_ids, text=text, title=title)


# --------------------------------------------------------------------------- the class tree


def _ids(raw: str, what: str) -> list[int]:
    try:
        return [int(x) for x in raw.split(",") if x.strip() != ""]
    except ValueError:
        raise AppError("invalid_request", f"{what} must be token ids separated by commas.") from None


def _bounded(request, name, default, lo, hi) -> int:
    raw = request.GET.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise AppError("invalid_request", f"{name} must be a whole number from {lo} to {hi}.")
    return int(raw)


def _lesson_context(classroom, lesson):
    rules = policy.build_rules(classroom, lesson, policy.INSTRUCTOR)
    return rules.default_model, client.tokenize(rules.default_model, lesson.prompt)["ids"]


def _tree_view(method):
    """A view of a lesson's class tree, for the class's instructors and staff
    (anyone else 404): ``view(request, classroom, lesson)``."""

    def decorate(view):
        @login_required
        @require_http_methods([method])
        @functools.wraps(view)
        def wrapper(request, pk, lesson_pk):
            classroom = classroom_for_manager(request.user, pk)
            return view(request, classroom, lesson_in(classroom, lesson_pk))

        return wrapper

    return decorate


@_tree_view("GET")
def tree_json(request, classroom, lesson):
    """The class tree of a lesson, as JSON."""
    try:
        root = _ids(request.GET.get("root", ""), "root")
        depth = _bounded(request, "depth", 8, 1, 40)
        keep = _bounded(request, "keep", 4, 1, 30)
        model_name, prompt_ids = _lesson_context(classroom, lesson)
    except AppError as exc:
        return json_error(exc)
    paths = []
    for kind in runkinds.with_hook("lesson_paths"):
        paths += kind.lesson_paths(classroom, lesson, model_name, prompt_ids)
    node = tree.build(paths, root_path=root, depth=depth, keep=keep)
    return JsonResponse(
        {"lesson": lesson.pk, "prompt": lesson.prompt, "root_path": root, "students": node["count"], "node": node}
    )


@_tree_view("POST")
def tree_open(request, classroom, lesson):
    """Open the wheel at a node of the tree: a new session of the instructor's."""
    try:
        path = _ids(request.POST.get("path", ""), "path")
        model_name, prompt_ids = _lesson_context(classroom, lesson)
        ids = prompt_ids + path
        text = client.decode(model_name, ids)
        url = _open_at(request.user, classroom, lesson, model_name, ids, text, f"{lesson.title} · class tree")
    except AppError as exc:
        messages.error(request, exc.message)
        return redirect("classrooms:live", pk=classroom.pk)
    return redirect(url)
