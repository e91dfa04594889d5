"""One playground run: its input, its settings and the tokens generated so far.

A run is built in one place, :meth:`Run.build`, whether it comes from a
``start`` message, a saved run or ``regenerate``: the settings are read from
a plain dict (the validated message, the stored JSON, the run's own
``settings()``) with one set of defaults. Playback (playing, paused, pacing)
is :class:`playground.stream.Stream`'s, not the run's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings as django_settings

SETTINGS = ("temperature", "top_k", "top_p", "greedy", "seed", "speed_ms", "context_window", "max_tokens")


def site_defaults() -> dict:
    """What a run falls back to when a setting is missing (e.g. in an old saved run)."""
    pg = django_settings.PLAYGROUND
    return {
        "temperature": 1.0,
        "top_k": 0,
        "top_p": 1.0,
        "greedy": False,
        "seed": None,
        "speed_ms": pg.get("DEFAULT_SPEED_MS", 500),
        "context_window": pg["CONTEXT_WINDOW"],
        "max_tokens": pg["MAX_TOKENS"],
    }


@dataclass
class Run:
    model: str
    text: str
    temperature: float
    top_k: int
    top_p: float
    greedy: bool
    seed: int | None
    speed_ms: int
    context_window: int
    max_tokens: int
    rules: object  # classrooms.policy.Rules
    classroom_id: int | None = None
    lesson_id: int | None = None
    run_id: str | None = None  # the saved run this one was loaded from
    finished_reason: str | None = None  # max_tokens | eos | stopped
    quota_left: int | None = None  # tokens left today in a class with a quota
    prompt_ids: list = field(default_factory=list)
    prompt_tokens: list = field(default_factory=list)  # [{token_id, token}], for the page
    # [{token_id, token, probability, chosen_by, probabilities}]
    tokens: list = field(default_factory=list)
    # Tokens a client had before its connection dropped: the run continues
    # after them once their ids are decoded (see playground.preparation).
    resume_tokens: list = field(default_factory=list)

    @classmethod
    def build(cls, *, model: str, text: str, settings: dict, rules, max_tokens_cap: int, **progress) -> "Run":
        """The one constructor: ``settings`` may miss keys or hold None (the
        site's defaults apply); max_tokens is cut to the safety limit."""
        s = site_defaults()
        s.update({k: v for k, v in settings.items() if k in SETTINGS and v is not None})
        return cls(
            model=model,
            text=text,
            temperature=float(s["temperature"]),
            top_k=int(s["top_k"]),
            top_p=float(s["top_p"]),
            greedy=bool(s["greedy"]),
            seed=None if s["seed"] is None else int(s["seed"]),
            speed_ms=int(s["speed_ms"]),
            context_window=int(s["context_window"]),
            max_tokens=min(int(s["max_tokens"]), max_tokens_cap),
            rules=rules,
            **progress,
        )

    def fresh_copy(self) -> "Run":
        """The same input and settings, no tokens: what ``regenerate`` plays."""
        return Run.build(
            model=self.model,
            text=self.text,
            settings=self.settings(),
            rules=self.rules,
            max_tokens_cap=self.max_tokens,
            classroom_id=self.classroom_id,
            lesson_id=self.lesson_id,
            quota_left=self.quota_left,
        )

    # ---- reading

    def ids(self, upto: int | None = None) -> list[int]:
        """The token ids the model continues from to generate token ``upto``."""
        upto = len(self.tokens) if upto is None else upto
        return self.prompt_ids + [t["token_id"] for t in self.tokens[:upto]]

    def settings(self) -> dict:
        return {name: getattr(self, name) for name in SETTINGS}

    def sampling(self, index: int) -> dict:
        """How token ``index`` is drawn. A seeded run draws each position with its
        own seed, so a regenerated or stepped run repeats its tokens."""
        return {
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "greedy": self.greedy,
            "seed": None if self.seed is None else self.seed + index,
            "context_window": self.context_window,
        }

    def snapshot(self) -> dict:
        """What saving stores (see ``playground.services.save_run``)."""
        return {
            "model": self.model,
            "text": self.text,
            "prompt_ids": list(self.prompt_ids),
            "tokens": [dict(t) for t in self.tokens],
            "settings": self.settings(),
            "finished_reason": self.finished_reason,
            "classroom_id": self.classroom_id,
            "lesson_id": self.lesson_id,
        }

    def finished_message(self) -> str:
        if self.finished_reason == "max_tokens":
            return f"✓ Reached max length ({self.max_tokens} tokens). Regenerate or modify the input to continue."
        if self.finished_reason == "eos":
            return "✓ Generation complete. Modify input to continue."
        return "The run was stopped. Regenerate or modify the input to continue."

    # ---- changing

    def add_token(self, result: dict, chosen_by: str) -> None:
        """Append a ``next_token`` result (``chosen_by``: model | hand)."""
        self.tokens.append(
            {
                "token_id": result["token_id"],
                "token": result["token_text"],
                "probability": result["probability"],
                "chosen_by": chosen_by,
                "probabilities": result["top"],
            }
        )
