"""The API's error body, ``{"error": ..., "message": ..., "code": ...}``, rendered from
:class:`common.errors.AppError` (the one error vocabulary) and from DRF's own errors.

DRF builds the response (status, ``Retry-After`` on throttling); we only
reshape its body, so the headers it set survive.
"""

from django.db import OperationalError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from common.errors import STATUS_TITLES, AppError
from common.http import json_error


def _flatten(detail, prefix=""):
    """Turn DRF's nested validation detail into one readable sentence."""
    if isinstance(detail, dict):
        parts = []
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else key
            parts.extend(_flatten(value, f"{prefix}.{name}" if prefix and name else (name or prefix)))
        return parts
    if isinstance(detail, list):
        parts = []
        for item in detail:
            parts.extend(_flatten(item, prefix))
        return parts
    return [f"{prefix}: {detail}" if prefix else str(detail)]


def api_exception_handler(exc, context):
    if isinstance(exc, OperationalError) and "locked" in str(exc):
        # SQLite's write lock not free within its busy timeout: the server is
        # overloaded, not broken. The write was rolled back; the page waits and retries.
        exc = AppError("busy", "The server is busy (the database is locked by other writes); try again in a moment.", 503, retry_after=2)
    if isinstance(exc, AppError):
        set_rollback()
        response = Response(exc.http_body(), status=exc.status)
        if "retry_after" in exc.extra:
            response["Retry-After"] = str(max(1, int(exc.extra["retry_after"])))
        return response
    response = exception_handler(exc, context)
    if response is None:
        return None  # a real bug: Django's 500 handler (JSON on /api/) takes it
    if isinstance(exc, exceptions.ParseError):
        error = AppError("invalid_json", str(exc.detail))
    elif isinstance(exc, exceptions.ValidationError):
        error = AppError("invalid_request", "; ".join(_flatten(exc.detail)))
    elif isinstance(exc, exceptions.Throttled):
        error = AppError("too_many_requests", str(exc.detail), 429, retry_after=exc.wait)
    else:
        detail = exc.detail if hasattr(exc, "detail") else str(exc)
        code = STATUS_TITLES.get(response.status_code, "error").lower().replace(" ", "_")
        error = AppError(code, "; ".join(_flatten(detail)), response.status_code)
    # DRF's response keeps the headers it set (Retry-After, Allow); only the body is ours.
    response.data = error.http_body()
    return response


def _wants_json(request):
    return request.path.startswith("/api/") or request.path.startswith("/healthz")


def handler404(request, exception=None):
    if _wants_json(request):
        return json_error(AppError("not_found", f"No such path: {request.path}", 404))
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    if _wants_json(request):
        return json_error(AppError("internal_error", "The server failed to handle this request.", 500))
    from django.views.defaults import server_error

    return server_error(request)


def handler400(request, exception=None):
    from django.core.exceptions import RequestDataTooBig

    if isinstance(exception, RequestDataTooBig):
        return json_error(AppError("too_large", "The request body is larger than this server accepts.", 413))
    if _wants_json(request):
        return json_error(AppError("bad_request", str(exception) or "Bad request", 400))
    from django.views.defaults import bad_request

    return bad_request(request, exception)
