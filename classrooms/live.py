"""The live class wheel: one open round per class, spins gathered over Channels.

The instructor opens a lesson's step on the projector (a :class:`LiveRound`).
Every spin a student makes in that class and lesson, on exactly that context
(same model, same token ids), becomes a :class:`LiveSpin` and is sent to the
class's instructors over the group ``classroom-<id>-teachers``. Moving on,
resetting and pushing the step go to everyone in ``classroom-<id>``.
"""

from __future__ import annotations

import logging
from collections import Counter

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from modelworker import client

from . import policy
from .models import LiveGuess, LiveRound, LiveSpin

log = logging.getLogger("classrooms.live")


def class_group(classroom_id) -> str:
    return f"classroom-{classroom_id}"


def teachers_group(classroom_id) -> str:
    return f"classroom-{classroom_id}-teachers"


def _send(group: str, message: dict) -> None:
    """Best effort: a spin must never fail because the channel layer did."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:  # noqa: BLE001
        log.exception("live: could not send %s to %s", message.get("type"), group)


# --------------------------------------------------------------------------- rounds


def current_round(classroom) -> LiveRound | None:
    return (
        LiveRound.objects.select_related("lesson")
        .filter(classroom=classroom, ended_at__isnull=True)
        .order_by("-started_at", "-id")
        .first()
    )


def _end_open_rounds(classroom, now):
    LiveRound.objects.filter(classroom=classroom, ended_at__isnull=True).update(ended_at=now)


def _start_round(classroom, lesson, user, **fields) -> LiveRound:
    """End the class's open round and open a new one (the only way a round starts)."""
    now = timezone.now()
    with transaction.atomic():
        _end_open_rounds(classroom, now)
        new = LiveRound.objects.create(classroom=classroom, lesson=lesson, started_by=user, started_at=now, **fields)
    _announce(new)
    return new


def _carried(old: LiveRound) -> dict:
    fields = ("model_name", "step", "prompt_token_ids", "prefix_token_ids", "context_text", "threshold", "temperature")
    return {name: getattr(old, name) for name in fields}


def open_round(classroom, lesson, user) -> LiveRound:
    """The class's open round on ``lesson``, or a new one at its first step."""
    current = current_round(classroom)
    if current is not None and current.lesson_id == lesson.pk:
        return current
    rules = policy.build_rules(classroom, lesson, policy.INSTRUCTOR)
    model = rules.default_model
    return _start_round(
        classroom,
        lesson,
        user,
        model_name=model,
        step=0,
        prompt_token_ids=client.tokenize(model, lesson.prompt)["ids"],
        prefix_token_ids=[],
        context_text=lesson.prompt,
        threshold=rules.threshold,
        temperature=rules.default_temperature,
    )


def reset_round(old: LiveRound, user) -> LiveRound:
    """A fresh round on the same step: the chart starts again from zero."""
    return _start_round(old.classroom, old.lesson, user, **_carried(old))


def next_step(old: LiveRound, token_id: int, user) -> LiveRound:
    """Move the class one token on, with ``token_id`` appended."""
    prefix = list(old.prefix_token_ids) + [int(token_id)]
    text = client.decode(old.model_name, list(old.prompt_token_ids) + prefix)
    fields = {**_carried(old), "step": old.step + 1, "prefix_token_ids": prefix, "context_text": text}
    return _start_round(old.classroom, old.lesson, user, **fields)


def end_round(round_: LiveRound) -> None:
    """Close the live wheel: the round stays, for the record."""
    round_.ended_at = timezone.now()
    round_.save(update_fields=["ended_at"])


def push(round_: LiveRound) -> None:
    """Send the step to every student's screen."""
    round_.pushed_at = timezone.now()
    round_.save(update_fields=["pushed_at"])
    _send(
        class_group(round_.classroom_id),
        {
            "type": "live.push",
            "round": round_.pk,
            "step": round_.step,
            "lesson": round_.lesson_id,
            "lesson_title": round_.lesson.title,
            "text": round_.context_text,
            "url": f"/classes/{round_.classroom_id}/live/rounds/{round_.pk}/open/",
        },
    )


def _announce(round_: LiveRound) -> None:
    _send(class_group(round_.classroom_id), {"type": "live.round", **round_summary(round_)})


def round_summary(round_: LiveRound) -> dict:
    return {
        "round": round_.pk,
        "lesson": round_.lesson_id,
        "lesson_title": round_.lesson.title,
        "step": round_.step,
        "text": round_.context_text,
        "model_name": round_.model_name,
        "threshold": round_.threshold,
        "temperature": round_.temperature,
        "pushed": round_.pushed_at is not None,
        "ended": round_.ended_at is not None,
    }


# What a live spin and a live guess copy from the wheel's event or guess
# (everything else is the round, the student and the time).
SPIN_FIELDS = ("token_id", "token_text", "probability", "category")
GUESS_FIELDS = ("token_id", "token_text", "probability", "rank")


def _live_dict(row, fields, **extra) -> dict:
    return {
        "round": row.round_id,
        **{name: getattr(row, name) for name in fields},
        "user": row.user.get_username() if row.user_id else "",
        **extra,
        "at": row.created_at.isoformat(),
    }


def spin_dict(spin: LiveSpin) -> dict:
    return _live_dict(spin, SPIN_FIELDS, user_id=spin.user_id)


def guess_dict(guess: LiveGuess) -> dict:
    return _live_dict(guess, GUESS_FIELDS)


def round_state(round_: LiveRound, other_top_k: int = 10) -> dict:
    """Everything the projector shows: the step, the model's probabilities at
    the lesson's threshold and starting temperature (the wheel a pushed step
    opens with), and the spins landed so far."""
    state = round_summary(round_)
    state["spins"] = [spin_dict(s) for s in round_.spins.select_related("user")]
    try:
        dist = client.distribution(
            round_.model_name,
            round_.token_ids,
            threshold=round_.threshold,
            temperature=round_.temperature,
            top_p=1.0,
            other_top_k=other_top_k,
            cache_key=None,
        )
        state["distribution"] = {
            "above_threshold_tokens": dist["above_threshold_tokens"],
            "other_category": dist["other_category"],
        }
    except client.ModelError as exc:
        state["distribution"] = None
        state["distribution_error"] = exc.message
    state["guesses"] = [guess_dict(g) for g in round_.guesses.select_related("user")]
    state["guess_summary"] = guess_summary(state["guesses"], state["distribution"])
    return state


def guess_summary(guesses: list[dict], distribution: dict | None) -> dict:
    """Beat the model: the class's prediction against the model's (one guess
    per student counts: their first)."""
    first = {}
    for g in guesses:
        first.setdefault(g["user"], g)
    counted = list(first.values())
    tally = Counter((g["token_id"], g["token_text"]) for g in counted)
    class_top = None
    if tally:
        (token_id, text), n = tally.most_common(1)[0]
        class_top = {"token_id": token_id, "token_text": text, "count": n}
    top = (distribution or {}).get("above_threshold_tokens") or []
    model_top = {k: top[0][k] for k in ("token_id", "token_text", "probability")} if top else None
    return {
        "guessers": len(counted),
        "top_guessed": sum(g["rank"] == 1 for g in counted),
        "average_probability": (sum(g["probability"] for g in counted) / len(counted)) if counted else None,
        "class_top": class_top,
        "model_top": model_top,
    }


# --------------------------------------------------------------------------- hooks from the wheel


def record_spin(session, event, ids_before) -> LiveSpin | None:
    """Called by the wheel after a token is appended. A spin (not a pick) in a
    class lesson, on the open round's exact context, counts for the class."""
    if getattr(event, "method", None) != "spun":
        return None
    copied = {name: getattr(event, name) for name in SPIN_FIELDS}
    return _record(session, ids_before, "live.spin", LiveSpin, spin_dict, session_id=str(session.pk), **copied)


def record_guess(session, guess, ids) -> LiveGuess | None:
    """Called by the wheel after a student's guess: a guess in a class lesson,
    on the open round's exact context, reaches the projector."""
    copied = {name: getattr(guess, name) for name in GUESS_FIELDS}
    return _record(session, ids, "live.guess", LiveGuess, guess_dict, **copied)


def _record(session, ids, message, model, as_dict, **fields):
    """A ``model`` row (LiveSpin or LiveGuess) of ``fields`` on the class's open
    round at ``ids``, sent to the class's instructors as a ``message``; None
    when no open round is on that context."""
    round_ = _open_round_at(session, ids)
    if round_ is None:
        return None
    row = model.objects.create(round=round_, user=session.owner, **fields)
    _send(teachers_group(round_.classroom_id), {"type": message, **as_dict(row)})
    return row


def _open_round_at(session, ids) -> LiveRound | None:
    """The class's open round of the session's lesson, if it is on exactly this context."""
    classroom_id = getattr(session, "classroom_id", None)
    lesson_id = getattr(session, "lesson_id", None)
    if not classroom_id or not lesson_id:
        return None
    round_ = (
        LiveRound.objects.filter(classroom_id=classroom_id, lesson_id=lesson_id, ended_at__isnull=True)
        .order_by("-started_at", "-id")
        .first()
    )
    if round_ is None or round_.model_name != session.model_name or round_.token_ids != list(ids):
        return None
    return round_


def path_grew(session) -> None:
    """A student's path in a lesson changed: the projector's class tree refetches."""
    if getattr(session, "classroom_id", None) and getattr(session, "lesson_id", None) and session.owner_id:
        _send(teachers_group(session.classroom_id), {"type": "live.tree", "lesson": session.lesson_id})
