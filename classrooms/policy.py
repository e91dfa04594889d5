"""What a request made in a class may do: one place, called with one line.

The wheel API, the playground socket and the pages all ask this module, so a
class's settings hold on the server whatever a page sends::

    rules = policy.rules_for_object(session)            # or rules_for(user, classroom, lesson)
    params = policy.wheel_params(rules, threshold=..., temperature=..., top_p=..., other_top_k=...)
    policy.charge(rules, user, model_name, tokens=1)    # raises QuotaExceeded (429)

Errors are :class:`PolicyError`, an ``ApiError``: raised in a DRF view they
become the API's usual ``{"error", "message", "code"}`` body with the right
status; a consumer sends ``{"type": "error", "code": e.code, "message": e.message}``.

Students are held to everything. The class's instructors and staff are held to
the allowed models and ranges too (they see what their students see) but not
to the locked threshold nor to the daily quota.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from tokenwheel_site.errors import ApiError

ACTING_SESSION_KEY = "acting_classroom_id"

STUDENT = "student"
INSTRUCTOR = "instructor"
STAFF = "staff"
FORMER = "former"  # removed from the class: keeps their runs, may not generate there


def _held_as_student(role) -> bool:
    return role not in (INSTRUCTOR, STAFF)


# --------------------------------------------------------------------------- errors


class PolicyError(ApiError):
    """A request the class does not allow (400 unless said otherwise)."""

    def __init__(self, code: str, message: str, status_code: int = 400, error: str = "Not allowed in this class", **extra):
        self.code = code
        super().__init__(error, message, status_code, code=code, **extra)


class NotFound(PolicyError):
    def __init__(self, what: str = "Class"):
        super().__init__("not_found", f"{what} does not exist", 404, error=f"{what} not found")


class QuotaExceeded(PolicyError):
    def __init__(self, quota: int, used: int):
        super().__init__(
            "quota_exceeded",
            f"Daily token quota reached: {used} of {quota} tokens used today in this class. It resets at midnight UTC.",
            429,
            error="Quota exceeded",
            quota=quota,
            used=used,
        )


# --------------------------------------------------------------------------- rules


def _site_defaults() -> dict:
    wheel = settings.WHEEL
    pg = settings.PLAYGROUND
    return {
        "threshold": wheel["DEFAULT_THRESHOLD"],
        "temperature_min": 0.01,
        "temperature_max": wheel["MAX_TEMPERATURE"],
        "other_top_k": wheel["DEFAULT_OTHER_TOP_K"],
        "other_top_k_max": wheel["MAX_OTHER_TOP_K"],
        "context_window": pg["CONTEXT_WINDOW"],
        "max_tokens": pg["MAX_TOKENS"],
    }


@dataclass(frozen=True)
class Rules:
    """The settings in force for one user in one class (and lesson)."""

    classroom_id: int | None = None
    classroom_name: str = ""
    lesson_id: int | None = None
    lesson_title: str = ""
    lesson_instructions: str = ""
    prompt: str | None = None
    role: str | None = None  # student / instructor / staff / None (no class)
    archived: bool = False
    allowed_models: tuple[str, ...] = ()  # empty: any registered model
    default_model: str = ""
    threshold: float = 0.01
    threshold_locked: bool = False
    temperature_min: float = 0.01
    temperature_max: float = 5.0
    top_p_enabled: bool = True
    other_top_k: int = 10
    context_window: int = 64
    max_tokens: int = 500
    daily_token_quota: int = 0  # 0: unlimited
    limits_apply: bool = field(default=False, repr=False)

    @property
    def in_class(self) -> bool:
        return self.classroom_id is not None

    @property
    def quota_applies(self) -> bool:
        return self.in_class and _held_as_student(self.role) and self.daily_token_quota > 0

    @property
    def default_temperature(self) -> float:
        return min(max(1.0, self.temperature_min), self.temperature_max)

    def as_dict(self) -> dict:
        """For pages: what the controls should allow."""
        data = asdict(self)
        data.pop("limits_apply", None)
        data["allowed_models"] = list(self.allowed_models)
        data["default_temperature"] = self.default_temperature
        data["quota_applies"] = self.quota_applies
        return data


def open_rules() -> Rules:
    """No class: the site's own limits."""
    d = _site_defaults()
    return Rules(
        threshold=d["threshold"],
        temperature_min=d["temperature_min"],
        temperature_max=d["temperature_max"],
        other_top_k=d["other_top_k"],
        context_window=d["context_window"],
        max_tokens=d["max_tokens"],
        default_model=settings.MODELWORKER["DEFAULT_MODEL"],
    )


def role_in(user, classroom) -> str | None:
    """student / instructor (of this class) / staff, or None for an outsider."""
    if not getattr(user, "is_authenticated", False):
        return None
    role = classroom.role_of(user)
    if role:
        return role
    return STAFF if user.is_staff else None


def rules_for(user, classroom=None, lesson=None) -> Rules:
    """The rules for ``user`` working in ``classroom`` (and ``lesson``).

    Raises NotFound when the user is not in the class (or the lesson is not the
    class's): to an outsider the class does not exist.
    """
    if lesson is not None and classroom is None:
        classroom = lesson.classroom
    if classroom is None:
        return open_rules()
    role = role_in(user, classroom)
    if role is None:
        raise NotFound("Class")
    if lesson is not None and lesson.classroom_id != classroom.id:
        raise NotFound("Lesson")
    return build_rules(classroom, lesson, role)


def build_rules(classroom, lesson=None, role=STUDENT) -> Rules:
    """The class's settings with the lesson's overrides, no membership check."""
    site = _site_defaults()

    def pick(name):
        if lesson is not None:
            value = getattr(lesson, name)
            if value is not None:
                return value
        return getattr(classroom, name)

    allowed = tuple(m for m in (classroom.allowed_models or []) if m)
    default_model = (lesson.model_name if lesson is not None and lesson.model_name else "") or classroom.default_model
    if not default_model:
        default_model = settings.MODELWORKER["DEFAULT_MODEL"]
        if allowed and default_model not in allowed:
            default_model = allowed[0]
    tmin, tmax = float(pick("temperature_min")), float(pick("temperature_max"))
    if tmin > tmax:
        tmin, tmax = tmax, tmin
    return Rules(
        classroom_id=classroom.id,
        classroom_name=classroom.name,
        lesson_id=lesson.id if lesson is not None else None,
        lesson_title=lesson.title if lesson is not None else "",
        lesson_instructions=lesson.instructions if lesson is not None else "",
        prompt=lesson.prompt if lesson is not None else None,
        role=role,
        archived=classroom.archived,
        allowed_models=allowed,
        default_model=default_model,
        threshold=float(pick("threshold")),
        threshold_locked=(_held_as_student(role) and not pick("students_may_change_threshold")),
        temperature_min=max(tmin, 0.01),
        temperature_max=min(tmax, site["temperature_max"]),
        top_p_enabled=bool(pick("top_p_enabled")),
        other_top_k=min(int(pick("other_top_k")), site["other_top_k_max"]),
        context_window=int(pick("context_window")),
        max_tokens=min(int(pick("max_tokens")), site["max_tokens"]),
        daily_token_quota=int(classroom.daily_token_quota),
        limits_apply=True,
    )


def rules_for_object(obj) -> Rules:
    """Rules for a saved thing (wheel session, playground run) with ``owner``,
    ``classroom`` and ``lesson`` attributes, judged as its owner."""
    classroom = getattr(obj, "classroom", None)
    if classroom is None:
        return open_rules()
    lesson = getattr(obj, "lesson", None)
    owner = getattr(obj, "owner", None)
    role = role_in(owner, classroom) if owner is not None else None
    # A student removed from the class keeps their runs; they are held to the
    # student rules and may no longer generate in the class (see check_active).
    return build_rules(classroom, lesson, role or FORMER)


# --------------------------------------------------------------------------- where a request is made


def resolve(user, classroom_id=None, lesson_id=None):
    """(classroom, lesson) from ids a request sent; NotFound for bad or foreign ids."""
    from .models import Classroom, Lesson

    lesson = None
    classroom = None
    if lesson_id not in (None, ""):
        try:
            lesson = Lesson.objects.select_related("classroom").get(pk=int(lesson_id))
        except (Lesson.DoesNotExist, TypeError, ValueError):
            raise NotFound("Lesson") from None
        classroom = lesson.classroom
        if classroom_id not in (None, "") and str(classroom.pk) != str(classroom_id):
            raise NotFound("Lesson")
    elif classroom_id not in (None, ""):
        try:
            classroom = Classroom.objects.get(pk=int(classroom_id))
        except (Classroom.DoesNotExist, TypeError, ValueError):
            raise NotFound("Class") from None
    if classroom is not None and role_in(user, classroom) is None:
        raise NotFound("Lesson" if lesson is not None else "Class")
    return classroom, lesson


def acting_classroom(request_or_session, user):
    """The class chosen in the header (kept in the Django session), if the user
    is still in it and it is not archived; else None."""
    from .models import Classroom

    session = getattr(request_or_session, "session", request_or_session)
    if session is None or not getattr(user, "is_authenticated", False):
        return None
    try:
        class_id = session.get(ACTING_SESSION_KEY)
    except Exception:  # noqa: BLE001 - a broken session store is "no class"
        return None
    if not class_id:
        return None
    return Classroom.objects.active().filter(pk=class_id, memberships__user=user).first()


def set_acting_classroom(request, classroom) -> None:
    if classroom is None:
        request.session.pop(ACTING_SESSION_KEY, None)
    else:
        request.session[ACTING_SESSION_KEY] = classroom.pk


def start(user, *, request=None, session=None, classroom_id=..., lesson_id=None):
    """Where a new session/run is made: explicit ids if given (``classroom_id=None``
    means "not in a class"), else the class acting in the header.

    Returns ``(classroom, lesson, rules)``; raises NotFound / PolicyError.
    """
    if not getattr(user, "is_authenticated", False):
        if lesson_id not in (None, "") or classroom_id not in (None, "", ...):
            raise NotFound("Lesson" if lesson_id not in (None, "") else "Class")
        return None, None, open_rules()
    if classroom_id is ... and lesson_id in (None, ""):
        classroom = acting_classroom(request if request is not None else session, user)
        lesson = None
    else:
        classroom, lesson = resolve(user, None if classroom_id is ... else classroom_id, lesson_id)
    rules = rules_for(user, classroom, lesson)
    check_active(rules)
    return classroom, lesson, rules


def check_active(rules: Rules) -> None:
    """Generating in an archived class, or in a class one was removed from, is refused."""
    if not rules.in_class:
        return
    if rules.archived:
        raise PolicyError("class_archived", f"The class “{rules.classroom_name}” is archived: it is read-only now.", 403)
    if rules.role == FORMER:
        raise PolicyError("not_in_class", f"You are no longer in the class “{rules.classroom_name}”.", 403)


# --------------------------------------------------------------------------- parameters


def _num(name, value, kind=float):
    if value is None or value == "":
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise PolicyError("invalid_parameter", f"{name} must be a number, not {value!r}.", error="Invalid request") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise PolicyError("invalid_parameter", f"{name} must be a finite number.", error="Invalid request")
    return number


def _pct(x: float) -> str:
    return f"{x * 100:g}%"


def check_model(rules: Rules, model_name: str | None) -> str:
    """The model to use: the one asked for if the class allows it, else the class's default."""
    if not model_name:
        return rules.default_model
    if rules.allowed_models and model_name not in rules.allowed_models:
        raise PolicyError(
            "model_not_allowed",
            f"The model {model_name!r} is not allowed in this class. Allowed: {', '.join(rules.allowed_models)}.",
        )
    return model_name


def check_temperature(rules: Rules, temperature) -> float:
    t = _num("temperature", temperature)
    if t is None:
        return rules.default_temperature
    if rules.limits_apply and not (rules.temperature_min - 1e-9 <= t <= rules.temperature_max + 1e-9):
        raise PolicyError(
            "temperature_out_of_range",
            f"Temperature {t:g} is outside this class's range {rules.temperature_min:g}–{rules.temperature_max:g}.",
        )
    return t


def check_top_p(rules: Rules, top_p) -> float:
    p = _num("top_p", top_p)
    if p is None:
        return 1.0
    if rules.limits_apply and not rules.top_p_enabled and abs(p - 1.0) > 1e-9:
        raise PolicyError("top_p_disabled", "Top-p is turned off in this class (it stays at 1.0).")
    return p


def wheel_params(rules: Rules, *, threshold=None, temperature=None, top_p=None, other_top_k=None) -> dict:
    """Threshold, temperature, top-p and other_top_k for one wheel request:
    missing values take the class's; values the class forbids raise PolicyError."""
    th = _num("threshold", threshold)
    if th is None:
        th = rules.threshold
    elif rules.threshold_locked and abs(th - rules.threshold) > 1e-9:
        raise PolicyError(
            "threshold_locked",
            f"The threshold is fixed at {_pct(rules.threshold)} in this class; students may not change it.",
        )
    k = _num("other_top_k", other_top_k, int)
    if k is None:
        k = rules.other_top_k
    elif rules.limits_apply and k > rules.other_top_k:
        raise PolicyError(
            "other_top_k_out_of_range", f"other_top_k may be at most {rules.other_top_k} in this class."
        )
    return {
        "threshold": th,
        "temperature": check_temperature(rules, temperature),
        "top_p": check_top_p(rules, top_p),
        "other_top_k": k,
    }


def merge_wheel_params(rules: Rules, *, sent: dict, stored: dict) -> dict:
    """The parameters an append is judged against: values the request sent are
    held to the class strictly; values remembered from the last distribution
    shown that the class no longer allows (its settings changed meanwhile)
    fall back to the class's."""
    keys = ("threshold", "temperature", "top_p", "other_top_k")
    explicit = {k: sent[k] for k in keys if k in sent and sent[k] is not None}
    params = wheel_params(rules, **explicit)
    for key in keys:
        if key in explicit or stored.get(key) is None:
            continue
        try:
            params[key] = wheel_params(rules, **{key: stored[key]})[key]
        except PolicyError:
            pass  # keep the class's value
    return params


def playground_params(
    rules: Rules, *, temperature=None, top_p=None, top_k=None, context_window=None, max_tokens=None
) -> dict:
    """Temperature, top-p, top-k, context window and max tokens for one playground
    stream. Missing values take the class's. The context window and max tokens
    are ceilings: a larger request is cut down to the class's (the stream's
    ``started`` message says what was used; the drawer only learns a lesson's
    own limits from it). A temperature or top-p the class forbids raises."""
    cw = _num("context_window", context_window, int)
    if cw is None or (rules.limits_apply and cw > rules.context_window):
        cw = rules.context_window
    mt = _num("max_tokens", max_tokens, int)
    if mt is None or (rules.limits_apply and mt > rules.max_tokens):
        mt = rules.max_tokens
    tk = _num("top_k", top_k, int)
    return {
        "temperature": check_temperature(rules, temperature),
        "top_p": check_top_p(rules, top_p),
        "top_k": tk or 0,
        "context_window": cw,
        "max_tokens": mt,
    }


# --------------------------------------------------------------------------- quota and usage


def _usage_filter(user, classroom_id, day):
    from .models import DailyUsage

    return DailyUsage.objects.filter(user=user, classroom_id=classroom_id, date=day)


def used_today(rules: Rules, user) -> int:
    if not rules.in_class or not getattr(user, "is_authenticated", False):
        return 0
    return _usage_filter(user, rules.classroom_id, timezone.localdate()).aggregate(n=Sum("tokens"))["n"] or 0


def remaining_quota(rules: Rules, user) -> int | None:
    """Tokens left today, or None when no quota applies."""
    if not rules.quota_applies:
        return None
    return max(0, rules.daily_token_quota - used_today(rules, user))


def _row(user, classroom_id, model_name, tool, day):
    from .models import DailyUsage

    owner = user if getattr(user, "is_authenticated", False) else None
    row = DailyUsage.objects.filter(
        user=owner, classroom_id=classroom_id, model_name=model_name, tool=tool, date=day
    ).first()
    if row is None:
        row = DailyUsage.objects.create(user=owner, classroom_id=classroom_id, model_name=model_name, tool=tool, date=day)
    return row


def charge(rules: Rules, user, model_name: str, tokens: int = 1, tool: str = "wheel") -> None:
    """Count ``tokens`` about to be generated; for a student over the class's
    daily quota, count a quota hit instead and raise QuotaExceeded (429).
    Call it before asking the model, so a refused request costs nothing."""
    day = timezone.localdate()
    refused = None
    with transaction.atomic():
        if rules.quota_applies:
            used = used_today(rules, user)
            if used + tokens > rules.daily_token_quota:
                refused = QuotaExceeded(rules.daily_token_quota, used)
        row = _row(user, rules.classroom_id, model_name, tool, day)
        if refused is None:
            type(row).objects.filter(pk=row.pk).update(tokens=F("tokens") + tokens)
        else:
            type(row).objects.filter(pk=row.pk).update(quota_hits=F("quota_hits") + 1)
    if refused is not None:
        raise refused


COUNTERS = ("sessions", "other_picks", "undos")


def count(rules: Rules, user, model_name: str, tool: str = "wheel", **counters) -> None:
    """Count usage events for the usage page: ``sessions=1`` (a session or run
    started), ``other_picks=1`` (a token drawn from Other), ``undos=1``."""
    updates = {name: F(name) + int(n) for name, n in counters.items() if name in COUNTERS and n}
    if not updates:
        return
    with transaction.atomic():
        row = _row(user, rules.classroom_id, model_name, tool, timezone.localdate())
        type(row).objects.filter(pk=row.pk).update(**updates)


async def acount(rules: Rules, user, model_name: str, tool: str = "playground", **counters) -> None:
    from asgiref.sync import sync_to_async

    await sync_to_async(count, thread_sensitive=True)(rules, user, model_name, tool, **counters)


async def acharge(rules: Rules, user, model_name: str, tokens: int = 1, tool: str = "playground") -> None:
    from asgiref.sync import sync_to_async

    await sync_to_async(charge, thread_sensitive=True)(rules, user, model_name, tokens, tool)


# --------------------------------------------------------------------------- who sees what


def can_view(user, obj) -> bool:
    """The access rule for anything with ``owner`` and ``classroom``: its owner,
    its class's instructors and staff. (Anonymous objects, owner None, are
    reached by their unguessable id alone and are not judged here.)"""
    owner_id = getattr(obj, "owner_id", None)
    if owner_id is None:
        return True
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_staff or owner_id == user.pk:
        return True
    classroom_id = getattr(obj, "classroom_id", None)
    if classroom_id is None:
        return False
    from .models import Membership

    return Membership.objects.filter(classroom_id=classroom_id, user=user, role=Membership.INSTRUCTOR).exists()


def can_change(user, obj) -> bool:
    """Only the owner changes a saved run (rename, delete, append); staff too."""
    owner_id = getattr(obj, "owner_id", None)
    if owner_id is None:
        return True
    return getattr(user, "is_authenticated", False) and (owner_id == user.pk or user.is_staff)


def visible_q(user, prefix: str = "") -> Q:
    """A filter for querysets of owned objects: what ``user`` may see."""
    from .models import Membership

    if not getattr(user, "is_authenticated", False):
        return Q(pk__in=[])
    if user.is_staff:
        return Q()
    taught = Membership.objects.filter(user=user, role=Membership.INSTRUCTOR).values("classroom_id")
    return Q(**{f"{prefix}owner": user}) | Q(**{f"{prefix}classroom__in": taught})


# --------------------------------------------------------------------------- pages


def rules_for_request(request, session_id=None) -> Rules:
    """The rules a page should show: those of the wheel session it opens
    (``?session=``) if that session is in a class, else the header's class."""
    user = request.user
    if session_id:
        from django.apps import apps

        WheelSession = apps.get_model("wheel", "WheelSession")
        try:
            session = WheelSession.objects.select_related("classroom", "lesson", "owner").filter(pk=session_id).first()
        except (ValueError, TypeError, Exception):  # noqa: BLE001 - a malformed id is "no session"
            session = None
        if session is not None and session.classroom_id and can_view(user, session):
            return rules_for_object(session)
    if not getattr(user, "is_authenticated", False):
        return open_rules()
    classroom = acting_classroom(request, user)
    try:
        return rules_for(user, classroom)
    except PolicyError:
        return open_rules()


def page_overrides(request) -> dict | None:
    """The wheel page's slider limits narrowed to the class (``wheel.pages.page_limits`` format)."""
    rules = rules_for_request(request, request.GET.get("session"))
    if not rules.in_class:
        return None
    t = rules.threshold
    overrides = {
        "threshold": {"min": t, "max": t, "default": t} if rules.threshold_locked else {"default": t},
        "temperature": {
            "min": rules.temperature_min,
            "max": rules.temperature_max,
            "default": rules.default_temperature,
        },
        "other_top_k": rules.other_top_k,
        "default_model": rules.default_model,
        "classroom": {
            "id": rules.classroom_id,
            "name": rules.classroom_name,
            "lesson_id": rules.lesson_id,
            "lesson_title": rules.lesson_title,
            "lesson_instructions": rules.lesson_instructions,
            "allowed_models": list(rules.allowed_models),
            "threshold_locked": rules.threshold_locked,
            "top_p_enabled": rules.top_p_enabled,
        },
    }
    if not rules.top_p_enabled:
        overrides["top_p"] = {"min": 1.0, "max": 1.0, "default": 1.0}
    return overrides
