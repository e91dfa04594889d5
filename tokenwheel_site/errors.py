"""One error body for the whole API: ``{"error": ..., "message": ...}``.

DRF builds the response (status, ``Retry-After`` on throttling); we only
reshape its body, so the headers it set survive.
"""

from django.http import JsonResponse
from rest_framework import exceptions, status
from rest_framework.views import exception_handler


class ApiError(exceptions.APIException):
    """An error with the seed's body. ``extra`` fields are merged into it."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, error, message, status_code=None, **extra):
        self.error = error
        self.message = message
        self.extra = extra
        if status_code is not None:
            self.status_code = status_code
        super().__init__(detail=message)


def not_found(what="Session", ident=None):
    message = f"{what} does not exist" if ident is None else f"{what} {ident} does not exist"
    return ApiError(f"{what} not found", message, status.HTTP_404_NOT_FOUND)


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


_TITLES = {
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
    503: "Service unavailable",
}


def api_exception_handler(exc, context):
    if isinstance(exc, ApiError):
        response = exception_handler(exc, context)
        response.data = {"error": exc.error, "message": exc.message, **exc.extra}
        return response
    response = exception_handler(exc, context)
    if response is None:
        return None  # a real bug: Django's 500 handler (JSON on /api/) takes it
    if isinstance(exc, exceptions.ParseError):
        response.data = {"error": "Invalid JSON", "message": str(exc.detail)}
    elif isinstance(exc, exceptions.ValidationError):
        response.data = {"error": "Invalid request", "message": "; ".join(_flatten(exc.detail))}
    elif isinstance(exc, exceptions.Throttled):
        response.data = {"error": "Too many requests", "message": str(exc.detail), "retry_after": exc.wait}
    else:
        detail = exc.detail if hasattr(exc, "detail") else str(exc)
        response.data = {
            "error": _TITLES.get(response.status_code, "Error"),
            "message": "; ".join(_flatten(detail)),
        }
    return response


def _wants_json(request):
    return request.path.startswith("/api/") or request.path.startswith("/healthz")


def handler404(request, exception=None):
    if _wants_json(request):
        return JsonResponse({"error": "Not found", "message": f"No such path: {request.path}"}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    if _wants_json(request):
        return JsonResponse(
            {"error": "Internal server error", "message": "The server failed to handle this request."}, status=500
        )
    from django.views.defaults import server_error

    return server_error(request)


def handler400(request, exception=None):
    from django.core.exceptions import RequestDataTooBig

    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(
            {"error": "Request too large", "message": "The request body is larger than this server accepts."},
            status=413,
        )
    if _wants_json(request):
        return JsonResponse({"error": "Bad request", "message": str(exception) or "Bad request"}, status=400)
    from django.views.defaults import bad_request

    return bad_request(request, exception)
