"""The class tree: every student's path from a lesson's prompt merged into one
prefix tree of token ids. Pure functions: the tools give the paths
(``RunKind.lesson_paths``), this shapes them for the projector.

A node says how many students took it (``count``), the model's probability
of its token and whether that token was the model's top choice (``greedy``).
Rare branches collapse into ``more``; below ``depth`` a node is ``truncated``
(re-root on it to see further).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Step:
    token_id: int
    token_text: str
    probability: float | None = None
    greedy: bool | None = None


@dataclass
class _Node:
    token_id: int | None
    token_text: str
    students: set = field(default_factory=set)
    probabilities: list = field(default_factory=list)
    greedy: bool | None = None
    children: dict = field(default_factory=dict)


def build(paths, *, root_path=(), depth: int = 8, keep: int = 4) -> dict:
    """``paths``: (student, [Step, ...]) pairs, each path starting at the
    lesson's prompt. Only paths through ``root_path`` count."""
    root_path = list(root_path)
    root = _Node(None, "")
    for student, steps in paths:
        if [s.token_id for s in steps[: len(root_path)]] != root_path:
            continue
        node = root
        node.students.add(student)
        for step in steps[len(root_path):]:
            child = node.children.get(step.token_id)
            if child is None:
                child = node.children[step.token_id] = _Node(step.token_id, step.token_text)
            child.students.add(student)
            if step.probability is not None:
                child.probabilities.append(step.probability)
            if child.greedy is None:
                child.greedy = step.greedy
            node = child
    return _render(root, root_path, 0, depth, keep)


def _render(node: _Node, path: list, level: int, depth: int, keep: int) -> dict:
    ranked = sorted(node.children.values(), key=lambda c: (-len(c.students), c.token_id))
    shown, hidden = (ranked[:keep], ranked[keep:]) if level < depth else ([], ranked)
    data = {
        "token_id": node.token_id,
        "token_text": node.token_text,
        "count": len(node.students),
        "depth": level,
        "probability": (sum(node.probabilities) / len(node.probabilities)) if node.probabilities else None,
        "greedy": bool(node.greedy),
        "path": path,
        "children": [_render(c, path + [c.token_id], level + 1, depth, keep) for c in shown],
        "more": None,
        "truncated": level >= depth and bool(ranked),
    }
    if hidden and level < depth:
        data["more"] = {"branches": len(hidden), "count": len(set().union(*(c.students for c in hidden)))}
    return data
