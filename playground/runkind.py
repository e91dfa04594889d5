"""The playground's part in classrooms: its saved runs (My runs, dashboard,
replay, fork, export, delete) and lessons opened in the drawer. Registered
with :mod:`classrooms.runkinds` in ``PlaygroundConfig.ready()``."""

from __future__ import annotations

import json

from django.utils import timezone

from classrooms import access, runkinds

from .models import PlaygroundRun

TITLE_MAX = 200


def rows(queryset):
    for r in queryset:
        title = r.title or (r.input_text[:60] or "(empty)")
        text = (r.input_text or "") + (r.generated_text or "")
        yield runkinds.row("playground", r, display_title=title, length=len(r.tokens or []), text=text)


def replay(run) -> dict:
    steps = [
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
        for i, t in enumerate(run.tokens or [])
    ]
    return {
        "kind": "playground",
        "id": str(run.pk),
        "prompt": run.input_text,
        "model_name": run.model_name,
        "steps": steps,
        "settings": run.settings,
    }


def data(run) -> dict:
    """The one JSON form of a saved run (downloads from My runs and the API)."""
    return {
        "id": str(run.pk),
        "title": run.title,
        "model_name": run.model_name,
        "input_text": run.input_text,
        "prompt_token_ids": run.prompt_token_ids,
        "generated_text": run.generated_text,
        "settings": run.settings,
        "tokens": run.tokens,
        "finished_reason": run.finished_reason,
        "classroom_id": run.classroom_id,
        "created_at": run.created_at.isoformat(),
    }


EXPORT_FORMATS = ("json", "text")


def export(run, fmt):
    """``(body, content_type, filename)``."""
    if fmt == "text":
        body = (run.input_text or "") + (run.generated_text or "")
        return body, "text/plain; charset=utf-8", f"playground-run-{run.pk}.txt"
    body = json.dumps({**data(run), "exported_at": timezone.now().isoformat()}, indent=2, ensure_ascii=False)
    return body, "application/json", f"playground-run-{run.pk}.json"


def fork(run, user) -> str:
    in_class = access.stays_in_class(user, run)
    copy = PlaygroundRun.objects.create(
        owner=user,
        classroom=run.classroom if in_class else None,
        lesson=run.lesson if in_class else None,
        title=f"{run.title or run.input_text[:40]} (fork)"[:TITLE_MAX],
        model_name=run.model_name,
        input_text=run.input_text,
        prompt_token_ids=run.prompt_token_ids,
        tokens=run.tokens,
        settings=run.settings,
        finished_reason=run.finished_reason,
        generated_text=run.generated_text,
    )
    return f"/runs/playground/{copy.pk}/"


def start_lesson(user, classroom, lesson, rules) -> str:
    # The drawer reads ?playground_lesson= and starts from the lesson (see README).
    return f"/?playground_lesson={lesson.pk}"


def register() -> None:
    runkinds.register(
        runkinds.RunKind(
            name="playground",
            model=PlaygroundRun,
            rows=rows,
            replay=replay,
            export=export,
            export_formats=EXPORT_FORMATS,
            fork=fork,
            delete=lambda run: run.delete(),
            data=data,
            find_live=lambda pk: PlaygroundRun.objects.select_related("classroom", "lesson").filter(pk=pk).first(),
            start_lesson=start_lesson,
        )
    )
