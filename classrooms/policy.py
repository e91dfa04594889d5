"""What a request made in a class may do: the class rules, applied in one layer.

Services of the tools ask this module, so a class's settings hold on the
server whatever a page sends::

    rules = policy.rules_for_object(session)            # or rules_for(user, classroom, lesson)
    params = policy.wheel_params(rules, threshold=..., temperature=..., top_p=..., other_top_k=...)

Who may see what is :mod:`classrooms.access`; usage and quota are
:mod:`classrooms.metering`. Errors are :class:`PolicyError`, an
:class:`common.errors.AppError` (HTTP, websockets and pages render it alike).

Students are held to everything. The class's instructors and staff are held to
the allowed models and ranges too (they see what their students see) but not
to the locked threshold nor to the daily quota.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from django.conf import settings

from common.errors import AppError, NotFound

from .access import FORMER, INSTRUCTOR, STAFF, STUDENT, role_in

__all__ = ["FORMER", "INSTRUCTOR", "STAFF", "STUDENT", "role_in"]

ACTING_SESSION_KEY = "acting_classroom_id"


def _held_as_student(role) -> bool:
    return role not in (INSTRUCTOR, STAFF)


class PolicyError(AppError):
    """A request the class does not allow (400 unless said otherwise). Its
    HTTP body carries the ``code`` too: the pages say which control is at fault."""

    def __init__(self, code: str, message: str, status: int = 400, **extra):
        super().__init__(code, message, status, code=code, **extra)


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

    # The generation settings in force (no defaults here: they come from
    # settings, through open_rules() and build_rules()).
    threshold: float
    temperature_min: float
    temperature_max: float
    other_top_k: int
    context_window: int
    max_tokens: int
    default_model: str
    classroom_id: int | None = None
    classroom_name: str = ""
    lesson_id: int | None = None
    lesson_title: str = ""
    lesson_instructions: str = ""
    prompt: str | None = None
    role: str | None = None  # student / instructor / staff / None (no class)
    archived: bool = False
    allowed_models: tuple[str, ...] = ()  # empty: any registered model
    threshold_locked: bool = False
    top_p_enabled: bool = True
    daily_token_quota: int = 0  # 0: unlimited
    predict_first: bool = False  # the lesson's predict-then-reveal
    seed: int | None = None  # the lesson's class seed
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

    def pick(name):  # the lesson's, else the class's, else the site's
        for source in (lesson, classroom):
            value = getattr(source, name, None)
            if value is not None:
                return value
        return settings.CLASS_DEFAULTS[name]

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
        predict_first=bool(lesson is not None and lesson.predict_first),
        seed=lesson.seed if lesson is not None else None,
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
        raise PolicyError("invalid_parameter", f"{name} must be a number, not {value!r}.") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise PolicyError("invalid_parameter", f"{name} must be a finite number.")
    return number


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


# A wheel parameter a request leaves out is the class's; one it sends is held
# to the class: each refusal gives the error's code and message, or None.


def _held(rules: Rules, name: str, value, class_value, refused, kind=float):
    number = _num(name, value, kind)
    if number is None:
        return class_value
    refusal = refused(rules, number)
    if refusal:
        raise PolicyError(*refusal)
    return number


def _threshold_refused(rules: Rules, th: float):
    if rules.threshold_locked and abs(th - rules.threshold) > 1e-9:
        return "threshold_locked", (
            f"The threshold is fixed at {rules.threshold * 100:g}% in this class; students may not change it."
        )


def _temperature_refused(rules: Rules, t: float):
    lo, hi = rules.temperature_min, rules.temperature_max
    if rules.limits_apply and not (lo - 1e-9 <= t <= hi + 1e-9):
        return "temperature_out_of_range", f"Temperature {t:g} is outside this class's range {lo:g}–{hi:g}."


def _top_p_refused(rules: Rules, p: float):
    if rules.limits_apply and not rules.top_p_enabled and abs(p - 1.0) > 1e-9:
        return "top_p_disabled", "Top-p is turned off in this class (it stays at 1.0)."


def _other_top_k_refused(rules: Rules, k: int):
    if rules.limits_apply and k > rules.other_top_k:
        return "other_top_k_out_of_range", f"other_top_k may be at most {rules.other_top_k} in this class."


def check_temperature(rules: Rules, temperature) -> float:
    return _held(rules, "temperature", temperature, rules.default_temperature, _temperature_refused)


def check_top_p(rules: Rules, top_p) -> float:
    return _held(rules, "top_p", top_p, 1.0, _top_p_refused)


def wheel_params(rules: Rules, *, threshold=None, temperature=None, top_p=None, other_top_k=None) -> dict:
    """Threshold, temperature, top-p and other_top_k for one wheel request:
    missing values take the class's; values the class forbids raise PolicyError."""
    th = _held(rules, "threshold", threshold, rules.threshold, _threshold_refused)
    k = _held(rules, "other_top_k", other_top_k, rules.other_top_k, _other_top_k_refused, int)
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
