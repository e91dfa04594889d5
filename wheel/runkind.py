"""The wheel's part in classrooms: its sessions as runs (My runs, dashboard,
replay, fork, export, delete), lessons that start on the wheel, live rounds
opened as sessions, and the class's choices per step. Registered with
:mod:`classrooms.runkinds` in ``WheelConfig.ready()``."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

from django.db.models import Count, Q

from classrooms import policy, runkinds, tree
from classrooms.models import Membership
from modelworker import client

from . import reports, services
from .models import TokenEvent, WheelSession


def rows(queryset):
    for s in queryset.annotate(n_tokens=Count("events", filter=Q(events__undone_at__isnull=True))):
        title = s.title or (s.initial_prompt[:60] or "(no prompt yet)")
        yield runkinds.row("wheel", s, display_title=title, length=s.n_tokens, text=s.current_text)


REPLAY_FIELDS = ("position", "token_id", "token_text", "probability", "category", "method", "sampled_from_other",
                 "other_rank", "threshold", "temperature", "top_p")


def replay(session) -> dict:
    events = list(session.active_events())
    guesses = [item["guess"] for item in services.history(session, events)]
    steps = [
        {**{f: getattr(e, f) for f in REPLAY_FIELDS}, "selected_at": e.selected_at.isoformat(), "guess": guess}
        for e, guess in zip(events, guesses)
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
    return reports.export(session, fmt)


def data(session) -> dict:
    """Everything stored about the session: its export, and every token it
    ever held, undone and reset ones included (kept for usage review)."""
    body, _, _ = reports.export(session, "json")
    stored = json.loads(body)
    fields = [*reports.EXPORT_COLUMNS, "undone_at", "removed_by"]
    stored["all_token_events"] = [
        {f: (v.isoformat() if hasattr(v, "isoformat") else v) for f in fields for v in [getattr(e, f)]}
        for e in session.events.order_by("selected_at", "position")
    ]
    return stored


def start_lesson(user, classroom, lesson, rules) -> str:
    session = services.create_session(
        user, rules.default_model, classroom, lesson, policy.wheel_params(rules), seed=rules.seed
    )
    services.set_prompt(session, lesson.prompt)
    if not session.title:
        session.title = lesson.title
        session.save(update_fields=["title"])
    return f"/?session={session.pk}"


def open_at(user, classroom, lesson, *, model_name, token_ids, text, title) -> str:
    """A new session of ``user``'s at a given context (a pushed live step, a
    node of the class tree)."""
    session = services.open_at_context(
        user, classroom, lesson, model_name=model_name, token_ids=token_ids, text=text, title=title
    )
    return f"/?session={session.pk}"


def lesson_paths(classroom, lesson, model_name, prompt_ids):
    """Each student's paths from the lesson's prompt: (student id, [Step, ...])
    per wheel session of theirs in the lesson that starts at that prompt."""
    prompt_ids = list(prompt_ids)
    students = Membership.objects.filter(classroom=classroom, role=Membership.STUDENT).values("user_id")
    sessions = WheelSession.objects.filter(
        classroom=classroom, lesson=lesson, owner__in=students, model_name=model_name
    ).prefetch_related("events")  # the class's students only: an instructor's node openings are not paths
    paths = []
    texts = {}
    for session in sessions:
        start = list(session.prompt_token_ids)
        if start[: len(prompt_ids)] != prompt_ids:
            continue  # the student set another prompt
        steps = []
        for token_id in start[len(prompt_ids):]:  # a live round's step the session opened at
            if token_id not in texts:
                texts[token_id] = services.model_call(client.decode, model_name, [token_id])
            steps.append(tree.Step(token_id, texts[token_id]))
        events = sorted((e for e in session.events.all() if e.undone_at is None), key=lambda e: e.position)
        for e in events:
            greedy = None if e.greedy_token_id is None else e.greedy_token_id == e.token_id
            steps.append(tree.Step(e.token_id, e.token_text, e.probability, greedy))
        if steps:
            paths.append((session.owner_id, steps))
    return paths


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
            find_live=WheelSession.objects.live_one,
            start_lesson=start_lesson,
            open_at=open_at,
            lesson_steps=lesson_steps,
            lesson_paths=lesson_paths,
        )
    )
