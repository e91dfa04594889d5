"""My runs: a signed-in user's runs of every tool (wheel sessions, playground
runs), kept with no expiry; renamed, deleted, replayed step by step, forked
and exported.

The same replay pages serve the class's instructors and staff, read-only
(the rule is :mod:`classrooms.access`). What a run is, how it is listed,
replayed, forked and exported is the tool's, registered in
:mod:`classrooms.runkinds`.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from common.errors import AppError

from . import access, runkinds

TITLE_MAX = 200


def kind_or_404(name) -> runkinds.RunKind:
    kind = runkinds.get(name)
    if kind is None:
        raise Http404("No such kind of run")
    return kind


def get_run(kind, pk, user, *, change=False):
    """Fetch and check: what the user may not see (or change) does not exist."""
    if isinstance(kind, str):
        kind = kind_or_404(kind)
    obj = kind.runs().select_related("owner", "classroom", "lesson").filter(pk=pk).first()
    # Anonymous objects (an anonymous wheel session) are not "runs": they have no page here.
    if obj is None or obj.owner_id is None or not access.can_view(user, obj):
        raise Http404("No such run")
    if change and not access.can_change(user, obj):
        raise Http404("No such run")
    return obj


def runs_of(owner=None, classroom=None):
    """Every run of ``owner`` (and/or in ``classroom``), newest first."""
    rows = []
    for kind in runkinds.all_kinds():
        qs = kind.runs()
        if owner is not None:
            qs = qs.filter(owner=owner)
        if classroom is not None:
            qs = qs.filter(classroom=classroom)
        rows += list(kind.rows(qs.select_related("owner", "classroom", "lesson")))
    rows.sort(key=lambda r: r["created_at"], reverse=True)
    return rows


# --------------------------------------------------------------------------- pages


@login_required
def runs_list(request):
    mine = runs_of(owner=request.user)
    class_filter = request.GET.get("class")
    rows = mine
    if class_filter == "none":
        rows = [r for r in mine if r["classroom"] is None]
    elif class_filter:
        rows = [r for r in mine if r["classroom"] is not None and str(r["classroom"].pk) == class_filter]
    classes = {r["classroom"].pk: r["classroom"] for r in mine if r["classroom"] is not None}
    return render(
        request,
        "classrooms/runs_list.html",
        {"rows": rows, "classes": sorted(classes.values(), key=lambda c: c.name), "class_filter": class_filter or ""},
    )


@login_required
def run_detail(request, kind, pk):
    run_kind = kind_or_404(kind)
    obj = get_run(run_kind, pk, request.user)
    owner_view = obj.owner_id == request.user.pk
    return render(
        request,
        "classrooms/run_detail.html",
        {"run": obj, "kind": kind, "data": run_kind.replay(obj), "owner_view": owner_view, "read_only": not owner_view},
    )


def _wants_json(request):
    return "application/json" in request.headers.get("Accept", "") or request.content_type == "application/json"


@require_POST
def run_rename(request, kind, pk):
    if not request.user.is_authenticated:
        raise Http404
    obj = get_run(kind, pk, request.user, change=True)
    if request.content_type == "application/json":
        try:
            title = str(json.loads(request.body or b"{}").get("title", ""))
        except (ValueError, AttributeError):
            error = AppError("invalid_json", 'Send {"title": ...}.')
            return JsonResponse(error.http_body(), status=error.status)
    else:
        title = request.POST.get("title", "")
    obj.title = title.strip()[:TITLE_MAX]
    fields = ["title"]
    if hasattr(obj, "saved"):
        obj.saved = True
        fields.append("saved")
    obj.save(update_fields=fields)
    if _wants_json(request):
        return JsonResponse({"kind": kind, "id": str(obj.pk), "title": obj.title, "url": f"/runs/{kind}/{obj.pk}/"})
    messages.success(request, f"Saved as “{obj.title or 'untitled'}”.")
    return redirect("classrooms:run-detail", kind=kind, pk=obj.pk)


@login_required
@require_POST
def run_delete(request, kind, pk):
    run_kind = kind_or_404(kind)
    obj = get_run(run_kind, pk, request.user, change=True)
    label = obj.title or "the run"
    run_kind.delete(obj)
    messages.success(request, f"Deleted {label}.")
    return redirect("classrooms:runs")


@login_required
@require_POST
def run_fork(request, kind, pk):
    """A copy of the run for the user to continue (the original is untouched)."""
    run_kind = kind_or_404(kind)
    obj = get_run(run_kind, pk, request.user)
    try:
        url = run_kind.fork(obj, request.user)
    except AppError as exc:
        messages.error(request, exc.message)
        return redirect("classrooms:run-detail", kind=kind, pk=obj.pk)
    messages.success(request, "Forked: this copy is yours to continue.")
    return redirect(url)


@login_required
@require_GET
def run_export(request, kind, pk):
    run_kind = kind_or_404(kind)
    obj = get_run(run_kind, pk, request.user)
    fmt = request.GET.get("format", "json")
    if fmt not in run_kind.export_formats:
        raise Http404
    body, content_type, filename = run_kind.export(obj, fmt)
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
