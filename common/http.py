"""AppError as a plain Django response, for views outside DRF."""

from django.http import JsonResponse

from .errors import AppError


def json_error(error: AppError) -> JsonResponse:
    response = JsonResponse(error.http_body(), status=error.status)
    if "retry_after" in error.extra:
        response["Retry-After"] = str(max(1, int(error.extra["retry_after"])))
    return response
