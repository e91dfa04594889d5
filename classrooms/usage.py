"""The staff-only usage review: figures per day, drawn by the page, exported as CSV.

Figures come from :class:`DailyUsage` (written by ``metering.charge`` and
``metering.count`` as people use the tools, so they survive the deletion of
expired anonymous sessions) and from the model worker's live ``stats()``.
"""

import csv
import datetime as dt
from collections import defaultdict

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from .models import Classroom, DailyUsage

MAX_DAYS = 365


def staff_only(view):
    """Anonymous: sign in first. Signed in but not staff: there is no such page."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise Http404("No such page")
        return view(request, *args, **kwargs)

    return wrapper


def _days(request) -> int:
    try:
        return max(1, min(MAX_DAYS, int(request.GET.get("days", 14))))
    except ValueError:
        return 14


def worker_stats() -> dict:
    """Latency p50/p95 and cache hit rate from the model worker, or why not."""
    from modelworker import client

    try:
        stats = client.stats()
    except Exception as exc:  # noqa: BLE001 - the page must render without a worker
        return {"available": False, "reason": str(getattr(exc, "message", exc)) or type(exc).__name__}
    models = []
    for model_id, m in sorted((stats.get("models") or {}).items()):
        models.append(
            {
                "model": model_id,
                "logits_cache_hit_rate": m.get("logits_cache_hit_rate"),
                "kv_reused_tokens": m.get("kv_reused_tokens"),
                "forward_passes": m.get("forward_passes"),
                "mean_batch_rows": m.get("mean_batch_rows"),
            }
        )
    rates = [m["logits_cache_hit_rate"] for m in models if m["logits_cache_hit_rate"] is not None]
    return {
        "available": True,
        "requests": stats.get("requests", 0),
        "latency_p50_ms": stats.get("latency_p50_ms"),
        "latency_p95_ms": stats.get("latency_p95_ms"),
        "cache_hit_rate": (sum(rates) / len(rates)) if rates else None,
        "models": models,
    }


# The DailyUsage counters the page adds up per day.
COUNTED = ("tokens", "sessions", "other_picks", "undos", "quota_hits", "guesses")


def figures(days: int = 14, today: dt.date | None = None) -> dict:
    today = today or timezone.localdate()
    start = today - dt.timedelta(days=days - 1)
    dates = [start + dt.timedelta(days=i) for i in range(days)]
    index = {d: i for i, d in enumerate(dates)}
    zeros = lambda: [0] * days  # noqa: E731

    per_day = {name: zeros() for name in ("wheel_tokens", *COUNTED)}
    users = [set() for _ in dates]
    by_model = defaultdict(zeros)
    by_class = defaultdict(zeros)
    class_names = dict(Classroom.objects.values_list("id", "name"))

    rows = DailyUsage.objects.filter(date__gte=start, date__lte=today).values(
        "date", "user_id", "classroom_id", "model_name", "tool", *COUNTED
    )
    for row in rows:
        i = index[row["date"]]
        for name in COUNTED:
            per_day[name][i] += row[name]
        if row["tool"] == "wheel":
            per_day["wheel_tokens"][i] += row["tokens"]
        if row["user_id"] is not None and (row["tokens"] or row["sessions"]):
            users[i].add(row["user_id"])
        by_model[row["model_name"]][i] += row["tokens"]
        label = class_names.get(row["classroom_id"], "No class") if row["classroom_id"] else "No class"
        by_class[label][i] += row["tokens"]

    def share(num, den):
        return [round(n / d, 4) if d else None for n, d in zip(num, den)]

    return {
        "days": days,
        "dates": [d.isoformat() for d in dates],
        "active_users": [len(u) for u in users],
        "sessions": per_day["sessions"],
        "tokens": per_day["tokens"],
        "other_picks": per_day["other_picks"],
        "other_share": share(per_day["other_picks"], per_day["wheel_tokens"]),
        "undos": per_day["undos"],
        "undo_rate": share(per_day["undos"], per_day["wheel_tokens"]),
        "quota_hits": per_day["quota_hits"],
        "guesses": per_day["guesses"],
        "tokens_by_model": dict(sorted(by_model.items())),
        "tokens_by_class": dict(sorted(by_class.items())),
        "totals": {
            "tokens": sum(per_day["tokens"]),
            "sessions": sum(per_day["sessions"]),
            "quota_hits": sum(per_day["quota_hits"]),
            "guesses": sum(per_day["guesses"]),
            "active_users": len(set().union(*users)) if users else 0,
            "other_share": (sum(per_day["other_picks"]) / sum(per_day["wheel_tokens"]))
            if sum(per_day["wheel_tokens"])
            else None,
            "undo_rate": (sum(per_day["undos"]) / sum(per_day["wheel_tokens"])) if sum(per_day["wheel_tokens"]) else None,
        },
    }


@staff_only
def usage_page(request):
    days = _days(request)
    data = figures(days)
    data["worker"] = worker_stats()
    rows = [
        {name: data[name][i] for name in ("active_users", "sessions", "tokens", "other_share", "undo_rate", "quota_hits")}
        | {"date": date}
        for i, date in enumerate(data["dates"])
    ]
    return render(
        request,
        "classrooms/usage.html",
        {"data": data, "rows": rows[::-1], "days": days, "day_choices": sorted({7, 14, 30, 90, days})},
    )


def csv_rows(data: dict):
    """Tidy rows: figure, date, key (model or class), value."""
    yield ["figure", "date", "key", "value"]
    for name in ("active_users", "sessions", "tokens", "other_picks", "other_share", "undos", "undo_rate", "quota_hits", "guesses"):
        for date, value in zip(data["dates"], data[name]):
            yield [name, date, "", "" if value is None else value]
    for group in ("tokens_by_model", "tokens_by_class"):
        for key, values in data[group].items():
            for date, value in zip(data["dates"], values):
                yield [group, date, key, value]
    worker = data.get("worker") or {}
    if worker.get("available"):
        for name in ("requests", "latency_p50_ms", "latency_p95_ms", "cache_hit_rate"):
            value = worker.get(name)
            yield [f"worker_{name}", "", "", "" if value is None else round(value, 4)]
        for m in worker["models"]:
            value = m["logits_cache_hit_rate"]
            yield ["worker_logits_cache_hit_rate", "", m["model"], "" if value is None else round(value, 4)]


@staff_only
def usage_csv(request):
    days = _days(request)
    data = figures(days)
    data["worker"] = worker_stats()
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="token-wheel-usage-{data["dates"][-1]}-{days}d.csv"'
    writer = csv.writer(response)
    for row in csv_rows(data):
        writer.writerow(row)
    return response
