"""Usage metering: tokens generated against a class's daily quota, and the
counters the usage page reads. Every tool meters through here::

    metering.charge(rules, user, model_name, tokens=1, tool="wheel")   # raises QuotaExceeded (429)
    metering.check_quota(...) + metering.add_tokens(...)                # the same, counted in the caller's transaction
    metering.count(rules, user, model_name, "wheel", sessions=1)

Figures live in :class:`DailyUsage`, so they survive the deletion of runs.
"""

from __future__ import annotations

import logging
import time

from asgiref.sync import sync_to_async
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from .models import DailyUsage
from .policy import PolicyError, Rules

COUNTERS = ("sessions", "other_picks", "undos", "guesses")

log = logging.getLogger("classrooms")


class QuotaExceeded(PolicyError):
    def __init__(self, quota: int, used: int):
        super().__init__(
            "quota_exceeded",
            f"Daily token quota reached: {used} of {quota} tokens used today in this class. It resets at midnight UTC.",
            429,
            quota=quota,
            used=used,
        )


def _owner(user):
    return user if getattr(user, "is_authenticated", False) else None


def used_today(rules: Rules, user) -> int:
    if not rules.in_class or _owner(user) is None:
        return 0
    rows = DailyUsage.objects.filter(user=user, classroom_id=rules.classroom_id, date=timezone.localdate())
    return rows.aggregate(n=Sum("tokens"))["n"] or 0


def remaining_quota(rules: Rules, user) -> int | None:
    """Tokens left today, or None when no quota applies."""
    if not rules.quota_applies:
        return None
    return max(0, rules.daily_token_quota - used_today(rules, user))


# The row each key counts on, as this process last found it: a class's
# appends then update it without looking it up first. Remembered only once
# the transaction that found or made it commits (a rolled-back row's pk may
# later name another key's row). Bounded; a row deleted since (retention)
# updates nothing and is looked up again.
_row_pks: dict[tuple, int] = {}
_ROW_PKS_MAX = 4096


def _bump(user, classroom_id, model_name, tool, **updates) -> None:
    """Apply ``updates`` (F expressions) to today's row of this key, made if missing."""
    key = {"user": _owner(user), "classroom_id": classroom_id, "model_name": model_name, "tool": tool,
           "date": timezone.localdate()}
    memo = (getattr(key["user"], "pk", None), classroom_id, model_name, tool, key["date"])
    pk = _row_pks.get(memo)
    if pk is not None and DailyUsage.objects.filter(pk=pk).update(**updates):
        return
    pk = _row_pk(key)
    DailyUsage.objects.filter(pk=pk).update(**updates)

    def remember():
        if len(_row_pks) >= _ROW_PKS_MAX:
            _row_pks.clear()
        _row_pks[memo] = pk

    transaction.on_commit(remember)


def _row_pk(key: dict) -> int:
    # Several rows can share a key (two first writes of the day at once on
    # PostgreSQL; a deleted account's rows handed to "anonymous"): count on
    # the oldest. get_or_create raised MultipleObjectsReturned on every later
    # append of that day: a 500 for the whole class.
    pk = DailyUsage.objects.filter(**key).order_by("pk").values_list("pk", flat=True).first()
    return pk if pk is not None else DailyUsage.objects.create(**key).pk


def charge(rules: Rules, user, model_name: str, tokens: int = 1, tool: str = "wheel") -> None:
    """Count ``tokens`` about to be generated; for a student over the class's
    daily quota, count a quota hit instead and raise QuotaExceeded (429).
    Call it before asking the model, so a refused request costs nothing."""
    check_quota(rules, user, model_name, tokens, tool)
    with transaction.atomic():
        add_tokens(rules, user, model_name, tokens, tool)


def check_quota(rules: Rules, user, model_name: str, tokens: int = 1, tool: str = "wheel") -> None:
    """The first half of :func:`charge`, for a caller that counts the tokens
    inside a transaction of its own (:func:`add_tokens`): raise QuotaExceeded,
    counting the hit, when ``tokens`` more would go over the class's quota."""
    if not rules.quota_applies:
        return
    with transaction.atomic():
        used = used_today(rules, user)
        if used + tokens <= rules.daily_token_quota:
            return
        _bump(user, rules.classroom_id, model_name, tool, quota_hits=F("quota_hits") + 1)
    raise QuotaExceeded(rules.daily_token_quota, used)


def add_tokens(rules: Rules, user, model_name: str, tokens: int = 1, tool: str = "wheel") -> None:
    """Count ``tokens`` generated (after :func:`check_quota`), in the caller's transaction."""
    _bump(user, rules.classroom_id, model_name, tool, tokens=F("tokens") + tokens)


def count(rules: Rules, user, model_name: str, tool: str = "wheel", **counters) -> None:
    """Count usage events for the usage page: ``sessions=1`` (a session or run
    started), ``other_picks=1`` (a token drawn from Other), ``undos=1``,
    ``guesses=1`` (a prediction before the reveal)."""
    updates = {name: F(name) + int(n) for name, n in counters.items() if name in COUNTERS and n}
    if not updates:
        return
    with transaction.atomic():
        _bump(user, rules.classroom_id, model_name, tool, **updates)


async def acount(rules: Rules, user, model_name: str, tool: str = "playground", **counters) -> None:
    await sync_to_async(count, thread_sensitive=True)(rules, user, model_name, tool, **counters)


async def acharge(rules: Rules, user, model_name: str, tokens: int = 1, tool: str = "playground") -> None:
    await sync_to_async(charge, thread_sensitive=True)(rules, user, model_name, tokens, tool)


async def aremaining_quota(rules: Rules, user) -> int | None:
    return await sync_to_async(remaining_quota, thread_sensitive=True)(rules, user)


class StreamMeter:
    """The usage of one stream of tokens (a playground run), written a batch at
    a time: every BATCH_TOKENS tokens or BATCH_SECONDS, and whenever asked
    (``force``), so a fast stream costs one database write a batch, not a token.
    Only QuotaExceeded reaches the caller: usage that cannot be written is
    logged, never breaks a stream."""

    BATCH_TOKENS = 25
    BATCH_SECONDS = 2.0

    def __init__(self, rules: Rules, user, model_name: str, tool: str, clock=time.monotonic):
        self.rules, self.user, self.model_name, self.tool = rules, user, model_name, tool
        self.clock = clock
        self.pending = 0
        self.written_at = clock()

    async def tokens(self, n: int = 1, *, force: bool = False) -> None:
        """``n`` more tokens generated; raises QuotaExceeded once the class's quota is used up."""
        self.pending += n
        due = self.pending >= self.BATCH_TOKENS or self.clock() - self.written_at >= self.BATCH_SECONDS
        if not self.pending or not (force or due):
            return
        n, self.pending, self.written_at = self.pending, 0, self.clock()
        try:
            await acharge(self.rules, self.user, self.model_name, n, tool=self.tool)
        except QuotaExceeded:
            raise
        except Exception:  # noqa: BLE001
            log.exception("could not record %s usage", self.tool)

    async def run_started(self) -> None:
        """A run began: one more session on the usage page."""
        try:
            await acount(self.rules, self.user, self.model_name, tool=self.tool, sessions=1)
        except Exception:  # noqa: BLE001
            log.exception("could not record a %s run", self.tool)
