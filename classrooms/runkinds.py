"""What classrooms needs from each tool, registered by the tool.

classrooms knows nothing of the tools (the wheel, the playground): each one
registers a :class:`RunKind` in its ``AppConfig.ready()``, and My runs, the
class dashboard, lessons, the live class wheel and the student-data download
use the kinds registered here. A lower layer never imports a higher one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

_KINDS: dict[str, "RunKind"] = {}


@dataclass(frozen=True)
class RunKind:
    """One tool's saved runs.

    ``model`` has ``owner``, ``classroom``, ``lesson``, ``title`` and
    ``created_at``; every function receives objects the caller has already
    checked with :mod:`classrooms.access`.
    """

    name: str  # the URL segment: /runs/<name>/<id>/
    model: type
    rows: Callable  # (queryset) -> iterable of row dicts for lists (My runs, dashboard)
    replay: Callable  # (obj) -> the replay page's data
    export: Callable  # (obj, fmt) -> (body, content_type, filename); AppError for an unknown format
    export_formats: tuple[str, ...]
    fork: Callable  # (obj, user) -> URL of the copy (the copy is the user's; access.stays_in_class places it)
    delete: Callable  # (obj) -> None
    data: Callable  # (obj) -> a JSON-able dict of everything stored about the run (student-data download)
    runs_q: dict | None = None  # a filter: which rows of ``model`` are runs (e.g. signed-in owners only)
    # Optional hooks of a tool beyond its runs
    find_live: Callable | None = None  # (pk) -> obj or None: an object still in use, by id (no access check)
    start_lesson: Callable | None = None  # (user, classroom, lesson, rules) -> URL where the lesson opens
    open_at: Callable | None = None  # (user, classroom, lesson, *, model_name, token_ids, text, title) -> URL
    lesson_steps: Callable | None = None  # (classroom, lesson, max_steps) -> per-step choices of the class
    lesson_paths: Callable | None = None  # (classroom, lesson, model_name, prompt_ids) -> [(student, [tree.Step])]

    def runs(self):
        qs = self.model.objects.all()
        return qs.filter(**self.runs_q) if self.runs_q else qs


def row(kind: str, obj, *, display_title: str, length: int, text: str) -> dict:
    """One line of a list of runs (My runs, the dashboard), the same for every tool."""
    return {
        "kind": kind,
        "id": str(obj.pk),
        "title": obj.title,
        "display_title": display_title,
        "classroom": obj.classroom,
        "lesson": obj.lesson,
        "model_name": obj.model_name,
        "created_at": obj.created_at,
        "length": length,
        "owner": obj.owner,
        "text": text,
    }


def register(kind: RunKind) -> None:
    _KINDS[kind.name] = kind


def get(name: str) -> RunKind | None:
    return _KINDS.get(name)


def all_kinds() -> list[RunKind]:
    return list(_KINDS.values())


def with_hook(hook: str) -> list[RunKind]:
    return [k for k in _KINDS.values() if getattr(k, hook) is not None]
