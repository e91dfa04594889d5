"""The wheel's part in classrooms: its sessions as runs (My runs, dashboard,
replay, fork, export, delete), lessons that start on the wheel, live rounds
opened as sessions, and the class's choices per step. Registered with
:mod:`classrooms.runkinds` in ``WheelConfig.ready()``."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

from django.db.models import Count, Q

from classrooms import policy, runkinds

from . import services
from .models import TokenEvent, WheelSession


def rows(queryset):
    for s in queryset.annotate(n_tokens=Count("events", filter=Q(events__undone_at__isnull=True))):
        title = s.title or (s.initial_prompt[:60] or "(no prompt yet)")
        yield runkinds.row("wheel", s, display_title=title, length=s.n_tokens, text=s.current_text)


REPLAY_FIELDS = ("position", "token_id", "token_text", "probability", "category", "method", "sampled_from_other",
                 "other_rank", "threshold", "temperature", "top_p")


def replay(session) -> dict:
    steps = [
        {**{f: getattr(e, f) for f in REPLAY_FIELDS}, "selected_at": e.selected_at.isoformat()}
        for e in session.active_events()
    ]
    return {
        "kind": "wheel",
        "id": str(session.pk),
        "prompt": session.initial_prompt,
        "model_name": session.model_name,
        "steps": steps,
        "offered_url": f"/runs/wheel/{session.pk}/steps/",
    }


def fork(session, user) -> str:
    return f"/?session={services.fork(session, user).pk}"


def export(session, fmt):
    return services.export(session, fmt)


def data(session) -> dict:
    body, _, _ = services.export(session, "json")
    return json.loads(body)


def start_lesson(user, classroom, lesson, rules) -> str:
    session = services.create_session(user, rules.default_model, classroom, lesson, policy.wheel_params(rules))
    services.set_prompt(session, lesson.prompt)
    if not session.title:
        session.title = lesson.title
        session.save(update_fields=["title"])
    return f"/?session={session.pk}"


def open_at(user, round_) -> str:
    """A new session of ``user``'s at a live round's step (a pushed step)."""
    session = services.open_at_context(
        user,
        round_.classroom,
        round_.lesson,
        model_name=round_.model_name,
        token_ids=round_.token_ids,
        text=round_.context_text,
        title=f"{round_.lesson.title} · step {round_.step + 1}" if round_.step else round_.lesson.title,
    )
    return f"/?session={session.pk}"


def lesson_steps(classroom, lesson, max_steps):
    """For each step (position), the tokens students' wheel sessions of this
    lesson hold there, most chosen first."""
    events = TokenEvent.objects.filter(
        session__classroom=classroom,
        session__lesson=lesson,
        session__owner__isnull=False,
        undone_at__isnull=True,
        position__lt=max_steps,
    ).values_list("position", "token_text", "method")
    per_step = defaultdict(Counter)
    methods = defaultdict(Counter)
    for position, text, method in events:
        per_step[position][text] += 1
        methods[(position, text)][method] += 1
    steps = []
    for position in sorted(per_step):
        total = sum(per_step[position].values())
        tokens = [
            {
                "text": text,
                "count": n,
                "share": n / total,
                "spun": methods[(position, text)]["spun"],
                "picked": methods[(position, text)]["picked"] + methods[(position, text)]["other"],
            }
            for text, n in per_step[position].most_common()
        ]
        steps.append({"position": position, "total": total, "tokens": tokens})
    return steps


def register() -> None:
    runkinds.register(
        runkinds.RunKind(
            name="wheel",
            model=WheelSession,
            runs_q={"owner__isnull": False},
            rows=rows,
            replay=replay,
            export=export,
            export_formats=("json", "csv"),
            fork=fork,
            delete=services.delete_session,
            data=data,
            find_live=lambda pk: WheelSession.objects.live().filter(pk=pk).first(),
            start_lesson=start_lesson,
            open_at=open_at,
            lesson_steps=lesson_steps,
        )
    )
