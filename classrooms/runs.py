"""My runs: a signed-in user's wheel sessions and playground runs, kept with no
expiry; renamed, deleted, replayed step by step, forked and exported.

The same replay pages serve the class's instructors and staff, read-only
(the access rule: owner, the class's instructors, staff; anyone else 404).
"""

from __future__ import annotations

import json

from django.apps import apps
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from modelworker import client

from . import policy

TITLE_MAX = 200


def wheel_model():
    return apps.get_model("wheel", "WheelSession")


def playground_model():
    try:
        return apps.get_model("playground", "PlaygroundRun")
    except LookupError:  # the playground app has no saved runs yet
        return None


def _get(model, pk, user, *, change=False):
    """Fetch and check: what the user may not see does not exist."""
    if model is None:
        raise Http404("No such run")
    try:
        obj = model.objects.select_related("owner", "classroom", "lesson").get(pk=pk)
    except (model.DoesNotExist, ValueError, TypeError):
        raise Http404("No such run") from None
    if obj.owner_id is None or not policy.can_view(user, obj):
        # Anonymous wheel sessions are not "runs": they have no page here.
        raise Http404("No such run")
    if change and not policy.can_change(user, obj):
        raise Http404("No such run")
    return obj


def get_wheel_session(pk, user, *, change=False):
    return _get(wheel_model(), pk, user, change=change)


def get_playground_run(pk, user, *, change=False):
    return _get(playground_model(), pk, user, change=change)


def _kind_getter(kind):
    if kind == "wheel":
        return get_wheel_session
    if kind == "playground":
        return get_playground_run
    raise Http404("No such kind of run")


# --------------------------------------------------------------------------- rows


def wheel_rows(queryset):
    qs = queryset.select_related("classroom", "lesson").annotate(
        n_tokens=Count("events", filter=Q(events__undone_at__isnull=True))
    )
    for s in qs:
        yield {
            "kind": "wheel",
            "id": str(s.pk),
            "title": s.title,
            "display_title": s.title or (s.initial_prompt[:60] or "(no prompt yet)"),
            "classroom": s.classroom,
            "lesson": s.lesson,
            "model_name": s.model_name,
            "created_at": s.created_at,
            "length": s.n_tokens,
            "owner": s.owner,
            "text": s.current_text,
        }


def playground_rows(queryset):
    for r in queryset.select_related("classroom", "lesson"):
        yield {
            "kind": "playground",
            "id": str(r.pk),
            "title": r.title,
            "display_title": r.title or (r.input_text[:60] or "(empty)"),
            "classroom": r.classroom,
            "lesson": r.lesson,
            "model_name": r.model_name,
            "created_at": r.created_at,
            "length": len(r.tokens or []),
            "owner": r.owner,
            "text": (r.input_text or "") + (r.generated_text or ""),
        }


def runs_of(owner=None, classroom=None):
    """Every run of ``owner`` (and/or in ``classroom``), newest first."""
    wheel_qs = wheel_model().objects.filter(owner__isnull=False)
    if owner is not None:
        wheel_qs = wheel_qs.filter(owner=owner)
    if classroom is not None:
        wheel_qs = wheel_qs.filter(classroom=classroom)
    rows = list(wheel_rows(wheel_qs))
    Run = playground_model()
    if Run is not None:
        pg_qs = Run.objects.all()
        if owner is not None:
            pg_qs = pg_qs.filter(owner=owner)
        if classroom is not None:
            pg_qs = pg_qs.filter(classroom=classroom)
        rows += list(playground_rows(pg_qs))
    rows.sort(key=lambda r: r["created_at"], reverse=True)
    return rows


# --------------------------------------------------------------------------- pages


@login_required
def runs_list(request):
    rows = runs_of(owner=request.user)
    class_filter = request.GET.get("class")
    if class_filter == "none":
        rows = [r for r in rows if r["classroom"] is None]
    elif class_filter:
        rows = [r for r in rows if r["classroom"] is not None and str(r["classroom"].pk) == class_filter]
    classes = {r["classroom"].pk: r["classroom"] for r in runs_of(owner=request.user) if r["classroom"] is not None}
    return render(
        request,
        "classrooms/runs_list.html",
        {"rows": rows, "classes": sorted(classes.values(), key=lambda c: c.name), "class_filter": class_filter or ""},
    )


def _wheel_steps(session):
    events = list(session.active_events())
    steps = []
    for e in events:
        steps.append(
            {
                "position": e.position,
                "token_id": e.token_id,
                "token_text": e.token_text,
                "probability": e.probability,
                "category": e.category,
                "method": e.method,
                "sampled_from_other": e.sampled_from_other,
                "other_rank": e.other_rank,
                "threshold": e.threshold,
                "temperature": e.temperature,
                "top_p": e.top_p,
                "selected_at": e.selected_at.isoformat(),
            }
        )
    return steps


def _playground_steps(run):
    steps = []
    for i, t in enumerate(run.tokens or []):
        steps.append(
            {
                "position": i,
                "token_id": t.get("token_id"),
                "token_text": t.get("token") if t.get("token") is not None else t.get("token_text", ""),
                "probability": t.get("probability"),
                "method": "picked" if t.get("chosen_by") == "hand" else "sampled",
                "offered": [
                    {"token_id": p.get("token_id"), "token_text": p.get("token", ""), "probability": p.get("prob")}
                    for p in (t.get("probabilities") or t.get("top") or [])
                ],
            }
        )
    return steps


@login_required
def run_detail(request, kind, pk):
    obj = _kind_getter(kind)(pk, request.user)
    owner_view = obj.owner_id == request.user.pk
    if kind == "wheel":
        data = {
            "kind": "wheel",
            "id": str(obj.pk),
            "prompt": obj.initial_prompt,
            "model_name": obj.model_name,
            "steps": _wheel_steps(obj),
            "offered_url": f"/runs/wheel/{obj.pk}/steps/",
        }
    else:
        data = {
            "kind": "playground",
            "id": str(obj.pk),
            "prompt": obj.input_text,
            "model_name": obj.model_name,
            "steps": _playground_steps(obj),
            "settings": obj.settings,
        }
    return render(
        request,
        "classrooms/run_detail.html",
        {"run": obj, "kind": kind, "data": data, "owner_view": owner_view, "read_only": not owner_view},
    )


@login_required
@require_GET
def wheel_step_offered(request, pk, position):
    """What the wheel offered before token ``position`` was chosen: recomputed
    from the token ids at the parameters of that choice (the model is
    deterministic, and the logits cache makes a replay cheap)."""
    session = get_wheel_session(pk, request.user)
    events = list(session.active_events())
    if not 0 <= position < len(events):
        return JsonResponse({"error": "Not found", "message": f"This run has no step {position}."}, status=404)
    event = events[position]
    ids = list(session.prompt_token_ids) + [e.token_id for e in events[:position]]
    try:
        dist = client.distribution(
            session.model_name,
            ids,
            threshold=event.threshold,
            temperature=event.temperature,
            top_p=event.top_p,
            other_top_k=5,
        )
    except client.ModelError as exc:
        return JsonResponse({"error": "Model unavailable", "message": exc.message}, status=503)
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


def _wants_json(request):
    return "application/json" in request.headers.get("Accept", "") or request.content_type == "application/json"


@require_POST
def run_rename(request, kind, pk):
    if not request.user.is_authenticated:
        raise Http404
    obj = _kind_getter(kind)(pk, request.user, change=True)
    if request.content_type == "application/json":
        try:
            title = str(json.loads(request.body or b"{}").get("title", ""))
        except (ValueError, AttributeError):
            return JsonResponse({"error": "Invalid JSON", "message": "Send {\"title\": ...}."}, status=400)
    else:
        title = request.POST.get("title", "")
    title = title.strip()[:TITLE_MAX]
    fields = ["title"]
    obj.title = title
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
    obj = _kind_getter(kind)(pk, request.user, change=True)
    label = obj.title or "the run"
    if kind == "wheel":
        from wheel import services

        services.delete_session(obj)
    else:
        obj.delete()
    messages.success(request, f"Deleted {label}.")
    return redirect("classrooms:runs")


@login_required
@require_POST
def run_fork(request, kind, pk):
    """A copy of the run for the user to continue (the original is untouched)."""
    obj = _kind_getter(kind)(pk, request.user)
    if kind == "wheel":
        from wheel import services

        copy = services.fork(obj, request.user)
        return redirect(f"/?session={copy.pk}")
    Run = playground_model()
    copy = Run.objects.create(
        owner=request.user,
        classroom=obj.classroom if obj.owner_id == request.user.pk else None,
        lesson=obj.lesson if obj.owner_id == request.user.pk else None,
        title=f"{obj.title or obj.input_text[:40]} (fork)"[:TITLE_MAX],
        model_name=obj.model_name,
        input_text=obj.input_text,
        prompt_token_ids=obj.prompt_token_ids,
        tokens=obj.tokens,
        settings=obj.settings,
        finished_reason=obj.finished_reason,
        generated_text=obj.generated_text,
    )
    messages.success(request, "Forked: this copy is yours to continue in the playground.")
    return redirect("classrooms:run-detail", kind="playground", pk=copy.pk)


@login_required
@require_GET
def run_export(request, kind, pk):
    obj = _kind_getter(kind)(pk, request.user)
    fmt = request.GET.get("format", "json")
    if kind == "wheel":
        from wheel import services

        if fmt not in ("json", "csv"):
            raise Http404
        body, content_type, filename = services.export(obj, fmt)
    else:
        if fmt == "text":
            body = (obj.input_text or "") + (obj.generated_text or "")
            content_type, filename = "text/plain; charset=utf-8", f"playground-{obj.pk}.txt"
        elif fmt == "json":
            body = json.dumps(
                {
                    "id": str(obj.pk),
                    "title": obj.title,
                    "model_name": obj.model_name,
                    "input_text": obj.input_text,
                    "generated_text": obj.generated_text,
                    "settings": obj.settings,
                    "tokens": obj.tokens,
                    "finished_reason": obj.finished_reason,
                    "created_at": obj.created_at.isoformat(),
                    "exported_at": timezone.now().isoformat(),
                },
                indent=2,
                ensure_ascii=False,
            )
            content_type, filename = "application/json", f"playground-{obj.pk}.json"
        else:
            raise Http404
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
