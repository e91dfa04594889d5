"""Reading a session: its state, statistics, greedy-vs-sampled comparison and
export. Nothing here changes a session's history."""

from __future__ import annotations

import csv
import io
import json

from classrooms import metering, policy
from modelworker import client
from modelworker.metrics import perplexity

from . import predict
from . import serializers as out
from .models import TokenEvent, WheelSession
from .services import context_ids, history, model_call, require_prompt, session_params


def session_state(session: WheelSession) -> dict:
    token_history = history(session)
    guesses = list(session.guesses.all())
    return {
        "session_id": session.id,
        "model_name": session.model_name,
        "title": session.title,
        "initial_prompt": session.initial_prompt,
        "current_text": session.current_text,
        "token_history": token_history,
        "generation_count": len(token_history),
        "prompt_token_count": len(session.prompt_token_ids),
        "params": session_params(session),
        "saved": session.saved,
        "forked_from": session.forked_from_id,
        "created_at": session.created_at,
        "last_accessed": session.last_accessed,
        "seed": session.seed,
        "guesses": guesses,
        "current_guess": next((g for g in guesses if g.context_ids == context_ids(session)), None),
        "predict_score": predict.score(session),
    }


def statistics(session: WheelSession) -> dict:
    events = list(session.active_events())
    n = len(events)
    log_probs = [e.log_probability for e in events]

    other = sum(1 for e in events if e.category == TokenEvent.CATEGORY_OTHER)
    return {
        "session_id": session.id,
        "generation_count": n,
        "average_probability": (sum(e.probability for e in events) / n) if n else None,
        "other_count": other,
        "other_frequency": (other / n) if n else None,
        "undo_count": session.events.filter(removed_by="undo").count(),
        "perplexity": perplexity(log_probs) if n and None not in log_probs else None,
        "spun_count": sum(1 for e in events if e.method == "spun"),
        "picked_count": sum(1 for e in events if e.method == "picked"),
        "other_draw_count": sum(1 for e in events if e.method == "other"),
    }


def compare(session: WheelSession, data: dict) -> dict:
    require_prompt(session)
    params = session_params(session)
    ids = context_ids(session)
    rules = policy.rules_for_object(session)
    policy.check_active(rules)
    temperature = policy.check_temperature(rules, data.get("temperature", params["temperature"]))
    top_p = policy.check_top_p(rules, data.get("top_p", params["top_p"]))
    metering.charge(rules, session.owner, session.model_name, 2 * data["n"], tool="wheel")
    greedy = model_call(client.continue_text, session.model_name, ids, n=data["n"], mode="greedy")
    sampled = model_call(
        client.continue_text,
        session.model_name,
        ids,
        n=data["n"],
        mode="sample",
        temperature=temperature,
        top_p=top_p,
        seed=data.get("seed"),
    )
    return {
        "session_id": session.id,
        "current_text": session.current_text,
        "n": data["n"],
        "temperature": temperature,
        "top_p": top_p,
        "greedy": greedy,
        "sampled": sampled,
    }


EXPORT_COLUMNS = [
    "position",
    "token_id",
    "token_text",
    "probability",
    "log_probability",
    "category",
    "method",
    "sampled_from_other",
    "threshold",
    "temperature",
    "top_p",
    "greedy_token_id",
    "seed",
    "selected_at",
]


def export(session: WheelSession, fmt: str) -> tuple[str, str, str]:
    """``(body, content_type, filename)`` of the session's history."""
    events = list(session.active_events())
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(EXPORT_COLUMNS)
        for e in events:
            writer.writerow([getattr(e, c).isoformat() if c == "selected_at" else getattr(e, c) for c in EXPORT_COLUMNS])
        return buffer.getvalue(), "text/csv; charset=utf-8", f"token-wheel-{session.id}.csv"
    state = dict(out.SessionOut(session_state(session)).data)
    state["token_history"] = [
        {c: (getattr(e, c).isoformat() if c == "selected_at" else getattr(e, c)) for c in EXPORT_COLUMNS} for e in events
    ]
    state["statistics"] = statistics(session)
    body = json.dumps(state, default=str, indent=2, ensure_ascii=False)
    return body, "application/json", f"token-wheel-{session.id}.json"
