"""A student's data under the school's control: everything the app holds
about one account as one JSON document, deleting an account, and purging
what is older than the retention period (``settings.PRIVACY["RETENTION_DAYS"]``).

The tools' runs are reached through :mod:`classrooms.runkinds` (each tool
registers its kind), so this module knows no tool.

What deleting an account keeps: nothing that names the student. Their runs
(with every token and guess in them), memberships and roles go; their usage
rows stay in their classes' totals with no user ("deleted student"), as do
their spins and guesses on a live round (already anonymous rows), until the
retention period purges them.
"""

from __future__ import annotations

import datetime as dt
import logging

from axes.models import AccessAttempt
from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from . import runkinds
from .models import Classroom, DailyUsage, InstructorRole, LiveGuess, LiveSpin, Membership

log = logging.getLogger("classrooms.privacy")

DELETED_STUDENT = "deleted student"


def _iso(value):
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value


def _rows(queryset, fields) -> list[dict]:
    return [{f: _iso(v) for f, v in row.items()} for row in queryset.values(*fields)]


def export(user) -> dict:
    """Everything stored about ``user``: account, classes, every run of every
    tool (with its tokens), usage, live-round spins and guesses, sign-in failures."""
    role = InstructorRole.objects.filter(user=user).first()
    return {
        "format": "token-wheel-student-data/1",
        "exported_at": timezone.now().isoformat(),
        "account": {
            "username": user.get_username(),
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "date_joined": _iso(user.date_joined),
            "last_login": _iso(user.last_login),
            "is_staff": user.is_staff,
            "instructor_since": _iso(role.granted_at) if role else None,
        },
        "classes": [
            {"classroom": m.classroom.name, "role": m.role, "joined_at": _iso(m.joined_at)}
            for m in Membership.objects.filter(user=user).select_related("classroom")
        ],
        "classes_created": list(Classroom.objects.filter(created_by=user).values_list("name", flat=True)),
        "runs": {
            kind.name: [kind.data(obj) for obj in kind.runs().filter(owner=user).order_by("created_at")]
            for kind in runkinds.all_kinds()
        },
        "usage": _rows(
            DailyUsage.objects.filter(user=user).order_by("date", "id"),
            ["date", "classroom__name", "model_name", "tool", "tokens", "sessions", "other_picks", "undos",
             "guesses", "quota_hits"],
        ),
        "live_round_guesses": _rows(
            LiveGuess.objects.filter(user=user), ["round__classroom__name", "token_id", "token_text", "probability",
                                                 "rank", "created_at"]
        ),
        "live_round_spins": _rows(
            LiveSpin.objects.filter(user=user), ["round__classroom__name", "token_id", "token_text", "probability",
                                                "category", "created_at"]
        ),
        "failed_sign_ins": _rows(
            AccessAttempt.objects.filter(username=user.get_username()),
            ["attempt_time", "ip_address", "user_agent", "failures_since_start"],
        ),
    }


@transaction.atomic
def delete_account(user) -> dict:
    """Delete ``user`` and all that is theirs; their usage stays in class totals without them."""
    removed = {}
    for kind in runkinds.all_kinds():
        objects = list(kind.model.objects.filter(owner=user))
        for obj in objects:
            try:
                kind.delete(obj)  # the tool's own clean-up (e.g. freeing a model cache)
            except Exception:  # noqa: BLE001 - a model worker that is down must not keep the data
                log.warning("deleting a %s run: the tool's clean-up failed; deleting the row", kind.name)
                type(obj).objects.filter(pk=obj.pk).delete()
        removed[kind.name] = len(objects)
    # Class totals keep the numbers, not the person; usage outside any class goes.
    DailyUsage.objects.filter(user=user, classroom__isnull=True).delete()
    removed["usage_rows_kept_anonymous"] = DailyUsage.objects.filter(user=user).update(user=None)
    AccessAttempt.objects.filter(username=user.get_username()).delete()
    user.delete()  # memberships, instructor role; live spins and guesses lose their user
    return removed


def deleted_students_in(classroom) -> dict:
    """What deleted students of ``classroom`` leave in its totals: numbers only."""
    totals = DailyUsage.objects.filter(classroom=classroom, user__isnull=True).aggregate(
        tokens=Sum("tokens"), runs=Sum("sessions")
    )
    return {"label": DELETED_STUDENT, "tokens": totals["tokens"] or 0, "runs": totals["runs"] or 0}


def retention_cutoff(now=None):
    days = settings.PRIVACY["RETENTION_DAYS"]
    return (now or timezone.now()) - dt.timedelta(days=days)


@transaction.atomic
def purge(now=None) -> dict:
    """Delete what is older than the retention period: anonymous sessions and
    runs of every tool, usage rows, and what deleted accounts left behind
    (their anonymous usage rows, live-round spins and guesses)."""
    cutoff = retention_cutoff(now)
    purged = {}
    for kind in runkinds.all_kinds():
        anonymous = kind.model.objects.filter(owner__isnull=True, created_at__lt=cutoff)
        purged[f"anonymous_{kind.name}"] = anonymous.delete()[1].get(kind.model._meta.label, 0)
    purged["usage_rows"] = DailyUsage.objects.filter(date__lt=cutoff.date()).delete()[0]
    purged["live_spins_of_deleted_accounts"] = LiveSpin.objects.filter(user__isnull=True, created_at__lt=cutoff).delete()[0]
    purged["live_guesses_of_deleted_accounts"] = LiveGuess.objects.filter(
        user__isnull=True, created_at__lt=cutoff
    ).delete()[0]
    purged["failed_sign_ins"] = AccessAttempt.objects.filter(attempt_time__lt=cutoff).delete()[0]
    return purged
