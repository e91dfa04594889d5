"""The playground websocket's wire: which messages a client may send, how they
are validated, the shapes the server answers with, and the per-connection
rate limit. No I/O.

Client → server (JSON objects with a ``type``; fields in
:mod:`playground.serializers`, one ``*Message`` serializer a type)::

    start       text, model?, temperature?, top_k?, top_p?, greedy?, seed?,
                speed_ms?, context_window?, max_tokens?, paused?, classroom_id?, lesson_id?,
                resume_tokens? (continue after a dropped connection)
    pause | resume | stop | regenerate
    step        token_id?, index?          (a hand-chosen token, optionally replacing index)
    set_speed   speed_ms
    tokenize    text, model?, context_window?
    models
    save        title?                     (signed-in users)
    load        run_id                     (signed-in users)

Server → client: hello, models, tokens, started, token, paused, resumed,
speed, done, saved, error (:meth:`common.errors.AppError.ws_message`). See
the README for an example session.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import ErrorDetail

from common.errors import AppError

CLIENT_TYPES = (
    "start",
    "pause",
    "resume",
    "step",
    "set_speed",
    "regenerate",
    "stop",
    "tokenize",
    "models",
    "save",
    "load",
)

EMPTY_INPUT = "Type something to get started..."

# Codes a serializer may give its own errors (ErrorDetail.code); any other
# validation error is "invalid_field".
OWN_CODES = ("empty_input",)


def limits() -> dict:
    pg = settings.PLAYGROUND
    return {
        "context_window": pg["CONTEXT_WINDOW"],
        "max_tokens": pg["MAX_TOKENS"],
        "messages_per_second": pg["MESSAGES_PER_SECOND"],
        "min_speed_ms": pg["MIN_SPEED_MS"],
        "max_speed_ms": pg["MAX_SPEED_MS"],
        "default_speed_ms": pg.get("DEFAULT_SPEED_MS", 500),
        "max_input_chars": pg.get("MAX_INPUT_CHARS", 4000),
        # A step slower than this pauses the stream with an error. The drawer
        # itself pauses after 5 s without a token (the seed's timeout); this is
        # the server's own bound for any client, above the worker's batching
        # delays on a busy machine.
        "step_timeout_seconds": pg.get("STEP_TIMEOUT_SECONDS", 15.0),
        "max_temperature": settings.WHEEL["MAX_TEMPERATURE"],
        "min_temperature": 0.01,
    }


# --------------------------------------------------------------------------- client messages


def validated(serializer_class, msg: dict) -> dict:
    """``msg``'s fields, typed and checked by ``serializer_class``; else an
    AppError naming the first bad field (``field``) and saying what is wrong
    with every one."""
    serializer = serializer_class(data={k: v for k, v in msg.items() if k != "type"})
    if serializer.is_valid():
        return serializer.validated_data
    problems = list(_problems(serializer.errors))
    path, detail = problems[0]
    if detail.code in OWN_CODES:
        raise AppError(detail.code, str(detail), field=path.split(".")[0])
    message = "; ".join(f"{p}: {d}" if p else str(d) for p, d in problems)
    raise AppError("invalid_field", message, field=path.split(".")[0])


def _problems(errors, path=""):
    """(dotted path, ErrorDetail) for each error in DRF's nested ``errors``."""
    if isinstance(errors, ErrorDetail):
        yield path, errors
        return
    items = errors.items() if isinstance(errors, dict) else ((None, e) for e in errors)
    for key, value in items:
        key = None if key == "non_field_errors" else key
        yield from _problems(value, path if key is None else f"{path}.{key}" if path else str(key))


def invalid(field: str, message: str) -> AppError:
    return AppError("invalid_field", message, field=field)


# --------------------------------------------------------------------------- rate limit


class TokenBucket:
    """``rate`` messages per second on average, bursts of up to ``rate``."""

    def __init__(self, rate: float, clock):
        self.rate = float(rate)
        self.capacity = float(max(1, rate))
        self.tokens = self.capacity
        self.clock = clock
        self.last = clock()

    def take(self) -> float:
        """0 if the message may pass, else the seconds until one may."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate if self.rate > 0 else 1.0


# --------------------------------------------------------------------------- server messages


def token_message(index: int, position: int, result: dict, chosen_by: str) -> dict:
    """One generated token, from an ``anext_token`` result."""
    return {
        "type": "token",
        "index": index,  # among generated tokens, from 0
        "position": position,  # in the whole sequence (input tokens first)
        "token_id": result["token_id"],
        "token": result["token_text"],
        "probability": result["probability"],
        "probabilities": result["top"],  # top 10: [{token_id, token, prob}]
        "chosen_by": chosen_by,
        "context_used": result["context_text"],  # the text the model saw
        "context_start": result["context_start"],  # first position it saw
        "context_tokens": result["context_tokens"],
        "eos": result["eos"],
    }


def started_message(run, *, stream_id: str, state: str) -> dict:
    """A run begins (or is loaded): its input, settings and the tokens it already has."""
    return {
        "type": "started",
        "stream_id": stream_id,
        "run_id": run.run_id,
        "model": run.model,
        "text": run.text,
        "prompt_tokens": run.prompt_tokens,
        "prompt_length": len(run.prompt_ids),
        **run.settings(),
        "state": state,
        "finished_reason": run.finished_reason,
        "classroom_id": run.classroom_id,
        "quota_left": run.quota_left,
        "tokens": [{"index": i, "position": len(run.prompt_ids) + i, **t} for i, t in enumerate(run.tokens)],
    }
