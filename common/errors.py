"""One error vocabulary for the whole product.

An :class:`AppError` carries a machine ``code``, a human ``message``, the HTTP
``status`` it answers with and any extra fields. The same error is rendered
three ways, all from here:

* HTTP (DRF and plain Django views): ``{"error": <title>, "message": ..., **extra}``
  with ``status`` (exactly the seed's body: ``error`` is the short title it names);
* websocket: ``{"type": "error", "code": ..., "message": ..., **extra}``;
* the model worker's wire format (:meth:`to_wire` / :meth:`from_wire`), so an
  error raised in a worker process reaches the web process unchanged.
"""

from __future__ import annotations

# code -> the seed's short "error" title. A code not listed takes the title of
# its status (STATUS_TITLES).
TITLES = {
    # the model worker
    "unknown_model": "Invalid model name",
    "model_unavailable": "Model unavailable",
    "model_loading": "Model loading",
    "invalid_token": "Invalid token",
    "unknown_characters": "Invalid prompt",
    "invalid_prompt": "Invalid prompt",
    "empty_context": "No prompt set",
    "no_prompt": "No prompt set",
    "other_empty": "Other is empty",
    "generation_failed": "Generation failed",
    "worker_timeout": "Model worker unavailable",
    "worker_unavailable": "Model worker unavailable",
    "busy": "Server busy",
    # requests
    "invalid_json": "Invalid JSON",
    "invalid_request": "Invalid request",
    "invalid_parameter": "Invalid request",
    "not_found": "Not found",
    "conflict": "Conflict",
    "read_only": "Read-only",
    "cannot_undo": "Cannot undo",
    "too_many_tokens": "Too many tokens",
    "too_many_sessions": "Too many sessions",
    "too_many_requests": "Too many requests",
    "quota_exceeded": "Quota exceeded",
    # class rules
    "class_archived": "Not allowed in this class",
    "not_in_class": "Not allowed in this class",
    "model_not_allowed": "Not allowed in this class",
    "temperature_out_of_range": "Not allowed in this class",
    "top_p_disabled": "Not allowed in this class",
    "threshold_locked": "Not allowed in this class",
    "other_top_k_out_of_range": "Not allowed in this class",
}

STATUS_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class AppError(Exception):
    """An error a user can act on. ``title`` overrides the vocabulary's title
    (e.g. "Session not found" for a 404 on a session)."""

    def __init__(self, code: str, message: str, /, status: int = 400, *, title: str | None = None, **extra):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = int(status)
        self.title = title or TITLES.get(code) or STATUS_TITLES.get(self.status, "Error")
        self.extra = extra

    def __repr__(self):
        return f"{type(self).__name__}({self.code!r}, {self.message!r}, {self.status})"

    # ---- renderings
    def http_body(self) -> dict:
        return {"error": self.title, "message": self.message, **self.extra}

    def ws_message(self, **more) -> dict:
        return {"type": "error", "code": self.code, "message": self.message, **self.extra, **more}

    def to_wire(self) -> dict:
        return {"code": self.code, "message": self.message, "status": self.status, "title": self.title, **self.extra}

    @classmethod
    def from_wire(cls, data: dict) -> "AppError":
        data = dict(data)
        return cls(data.pop("code"), data.pop("message"), data.pop("status", 500), title=data.pop("title", None), **data)


class NotFound(AppError):
    """What does not exist, or what the asker may not see (the same to them)."""

    def __init__(self, what: str = "Session", ident=None):
        message = f"{what} does not exist" if ident is None else f"{what} {ident} does not exist"
        super().__init__("not_found", message, 404, title=f"{what} not found")


def not_found(what: str = "Session", ident=None) -> NotFound:
    return NotFound(what, ident)
