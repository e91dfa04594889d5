from django.http import JsonResponse

from . import client


def healthz(request):
    """Liveness plus each model's state (loading, ready, unavailable and why)."""
    try:
        models = client.models()
    except client.ModelError as exc:
        return JsonResponse({"status": "degraded", "error": exc.code, "message": exc.message}, status=503)
    default = next((m for m in models if m["default"]), None)
    ok = default is not None and default["status"] in ("ready", "loading", "not_loaded")
    return JsonResponse(
        {
            "status": "ok" if ok else "degraded",
            "models": [{"id": m["id"], "status": m["status"], "reason": m.get("reason")} for m in models],
        },
        status=200 if ok else 503,
    )
