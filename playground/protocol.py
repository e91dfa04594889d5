"""The playground websocket's messages: validation of what a client sends and
the shapes of what the server answers. Pure functions, no I/O.

Client → server (JSON objects with a ``type``)::

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
speed, done, saved, error. See the README for an example session.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.conf import settings

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


class ProtocolError(Exception):
    """A message the server cannot act on; the client gets ``{"type": "error", ...}``."""

    def __init__(self, code: str, message: str, **extra):
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


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


# --------------------------------------------------------------------------- field checks


def _number(msg: dict, name: str, default, lo: float, hi: float):
    value = msg.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProtocolError("invalid_field", f"{name} must be a number, not {value!r}.", field=name)
    if not lo <= value <= hi:
        raise ProtocolError("invalid_field", f"{name} must be between {lo:g} and {hi:g}, not {value:g}.", field=name)
    return float(value)


def _integer(msg: dict, name: str, default, lo: int, hi: int | None = None):
    value = msg.get(name, default)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError("invalid_field", f"{name} must be a whole number, not {value!r}.", field=name)
    if value < lo or (hi is not None and value > hi):
        bounds = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
        raise ProtocolError("invalid_field", f"{name} must be {bounds}, not {value}.", field=name)
    return value


def _boolean(msg: dict, name: str, default: bool) -> bool:
    value = msg.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ProtocolError("invalid_field", f"{name} must be true or false, not {value!r}.", field=name)
    return value


def _string(msg: dict, name: str, default=None, max_length: int = 200):
    value = msg.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ProtocolError("invalid_field", f"{name} must be a string, not {value!r}.", field=name)
    if len(value) > max_length:
        raise ProtocolError("invalid_field", f"{name} is longer than {max_length} characters.", field=name)
    return value


def speed(msg: dict, default=None) -> int:
    """0 (as fast as possible) or MIN_SPEED_MS..MAX_SPEED_MS milliseconds between tokens."""
    lim = limits()
    if default is None:
        default = lim["default_speed_ms"]
    value = _integer(msg, "speed_ms", default, 0, lim["max_speed_ms"])
    if 0 < value < lim["min_speed_ms"]:
        raise ProtocolError(
            "invalid_field",
            f"speed_ms must be 0 (as fast as possible) or between {lim['min_speed_ms']} and "
            f"{lim['max_speed_ms']}, not {value}.",
            field="speed_ms",
        )
    return value


def input_text(msg: dict) -> str:
    lim = limits()
    if "text" not in msg or msg["text"] is None:
        raise ProtocolError("empty_input", "Type something to get started...", field="text")
    text = _string(msg, "text", max_length=lim["max_input_chars"])
    if text == "":
        raise ProtocolError("empty_input", "Type something to get started...", field="text")
    if "\x00" in text:  # PostgreSQL cannot store it: saving the run would fail
        raise ProtocolError("invalid_field", "text must not contain NUL characters.", field="text")
    return text


@dataclass
class StartRequest:
    text: str
    model: str | None
    temperature: float | None
    top_k: int | None
    top_p: float | None
    greedy: bool
    seed: int | None
    speed_ms: int
    context_window: int | None
    max_tokens: int | None
    paused: bool
    classroom_id: object
    lesson_id: object
    resume_tokens: list


def _resume_tokens(msg: dict, max_tokens: int) -> list:
    """Tokens a client already had when its connection dropped: the new stream
    continues after them. Their probabilities are the client's copy (shown
    again, never used for sampling); the ids are checked by the model worker."""
    value = msg.get("resume_tokens") or []
    if not isinstance(value, list) or len(value) > max_tokens:
        raise ProtocolError(
            "invalid_field", f"resume_tokens must be a list of at most {max_tokens} tokens.", field="resume_tokens"
        )
    tokens = []
    for item in value:
        if not isinstance(item, dict):
            raise ProtocolError("invalid_field", "each of resume_tokens must be an object.", field="resume_tokens")
        top = item.get("probabilities") or []
        if not isinstance(top, list) or len(top) > 11:
            raise ProtocolError("invalid_field", "probabilities: at most 11 entries.", field="resume_tokens")
        tokens.append(
            {
                "token_id": _integer(item, "token_id", None, 0),
                "probability": _number(item, "probability", 0.0, 0.0, 1.0),
                "chosen_by": "hand" if item.get("chosen_by") == "hand" else "model",
                "probabilities": [
                    {
                        "token_id": _integer(p, "token_id", 0, 0),
                        "token": _string(p, "token", "", 200),
                        "prob": _number(p, "prob", 0.0, 0.0, 1.0),
                    }
                    for p in top
                    if isinstance(p, dict)
                ],
            }
        )
        if tokens[-1]["token_id"] is None:
            raise ProtocolError("invalid_field", "each of resume_tokens needs a token_id.", field="resume_tokens")
    return tokens


def parse_start(msg: dict) -> StartRequest:
    """Types and ranges of a ``start``. Class limits are applied afterwards
    (``classrooms.policy``); ``None`` means "the default in force"."""
    lim = limits()
    text = input_text(msg)
    classroom_id = msg.get("classroom_id", ...)
    if classroom_id is not ... and classroom_id is not None and not isinstance(classroom_id, (int, str)):
        raise ProtocolError("invalid_field", "classroom_id must be an id.", field="classroom_id")
    lesson_id = msg.get("lesson_id")
    if lesson_id is not None and not isinstance(lesson_id, (int, str)):
        raise ProtocolError("invalid_field", "lesson_id must be an id.", field="lesson_id")
    return StartRequest(
        text=text,
        model=_string(msg, "model", None, 100) or None,
        temperature=_number(msg, "temperature", None, lim["min_temperature"], lim["max_temperature"]),
        top_k=_integer(msg, "top_k", None, 0, 100_000),
        top_p=_number(msg, "top_p", None, 1e-6, 1.0),
        greedy=_boolean(msg, "greedy", False),
        seed=_integer(msg, "seed", None, 0, 2**63 - 1),
        speed_ms=speed(msg),
        # Larger than the model's maximum is capped (and the cap reported in `started`).
        context_window=_integer(msg, "context_window", None, 1),
        # Larger than the safety limit is capped likewise.
        max_tokens=_integer(msg, "max_tokens", None, 1),
        paused=_boolean(msg, "paused", False),
        classroom_id=classroom_id,
        lesson_id=lesson_id,
        resume_tokens=_resume_tokens(msg, lim["max_tokens"]),
    )


@dataclass
class StepRequest:
    token_id: int | None
    index: int | None


def parse_step(msg: dict) -> StepRequest:
    token_id = _integer(msg, "token_id", None, 0)
    index = _integer(msg, "index", None, 0)
    if index is not None and token_id is None:
        raise ProtocolError("invalid_field", "index needs a token_id: the token to put at that index.", field="index")
    return StepRequest(token_id=token_id, index=index)


def parse_save(msg: dict) -> str:
    return (_string(msg, "title", "", 200) or "").strip()


def parse_run_id(msg: dict) -> str:
    import uuid

    value = _string(msg, "run_id", None, 64)
    try:
        return str(uuid.UUID(value))
    except (TypeError, ValueError, AttributeError):
        raise ProtocolError("invalid_field", "run_id must be the id of a saved run.", field="run_id") from None


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


def error(code: str, message: str, **extra) -> dict:
    return {"type": "error", "code": code, "message": message, **extra}


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
