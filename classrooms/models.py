"""Accounts, roles, classes, lessons, the live class round and usage counters.

Roles: staff are admins; a user with an :class:`InstructorRole` is an
instructor (granted by an admin, or by redeeming an :class:`InstructorInvite`);
everyone else is a student. Within a class, :class:`Membership` says who
teaches it and who studies in it.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

# No 0/O, 1/I/L, 2/Z, 5/S, 8/B: a code read off a projector is typed right.
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
JOIN_CODE_LENGTH = 6
INVITE_CODE_LENGTH = 10


def random_code(length: int = JOIN_CODE_LENGTH) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def random_invite_code() -> str:
    return random_code(INVITE_CODE_LENGTH)


def normalize_code(raw: str) -> str:
    """What a person typed, as stored: upper case, no spaces or dashes."""
    return "".join(ch for ch in (raw or "").upper() if ch.isalnum())


# --------------------------------------------------------------------------- roles


class InstructorInvite(models.Model):
    """A code an admin hands to a teacher; redeeming it grants the instructor role."""

    code = models.CharField(max_length=32, unique=True, default=random_invite_code)
    note = models.CharField(max_length=200, blank=True, help_text="Who the code is for (shown to admins only).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    max_uses = models.PositiveIntegerField(default=1, help_text="0 means unlimited.")
    uses = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.code} ({self.note})" if self.note else self.code

    def save(self, *args, **kwargs):
        self.code = normalize_code(self.code)
        super().save(*args, **kwargs)

    @property
    def usable(self) -> bool:
        if not self.active:
            return False
        if self.expires_at and self.expires_at <= timezone.now():
            return False
        return self.max_uses == 0 or self.uses < self.max_uses


class InstructorRole(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="instructor_role")
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    invite = models.ForeignKey(InstructorInvite, null=True, blank=True, on_delete=models.SET_NULL, related_name="roles")
    granted_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"instructor: {self.user}"


def is_instructor(user) -> bool:
    """May create classes. Staff may too (they run the site)."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_staff:
        return True
    return InstructorRole.objects.filter(user=user).exists()


# --------------------------------------------------------------------------- classes


class GenerationSettings(models.Model):
    """The generation settings a class sets and a lesson may override: defined
    once, here, for both (and their forms take their fields from it).

    Empty in a lesson: the class's value. A class is given the site's defaults
    (``settings.CLASS_DEFAULTS``, the only place they are written) for any
    value it was created without.
    """

    FIELDS = (
        "threshold",
        "students_may_change_threshold",
        "temperature_min",
        "temperature_max",
        "top_p_enabled",
        "other_top_k",
        "context_window",
        "max_tokens",
    )

    threshold = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    students_may_change_threshold = models.BooleanField(
        null=True, blank=True, verbose_name="Students may change the threshold"
    )
    temperature_min = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.01)], verbose_name="Lowest temperature"
    )
    temperature_max = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.01)], verbose_name="Highest temperature"
    )
    top_p_enabled = models.BooleanField(null=True, blank=True, verbose_name="Students may use top-p")
    other_top_k = models.PositiveIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(100)], verbose_name="Sample tokens shown in Other"
    )
    context_window = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], verbose_name="Playground context window (tokens)"
    )
    max_tokens = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], verbose_name="Playground max tokens per run"
    )

    class Meta:
        abstract = True

    def fill_site_defaults(self) -> None:
        for name in self.FIELDS:
            if getattr(self, name) is None:
                setattr(self, name, settings.CLASS_DEFAULTS[name])

    def clean(self):
        lo, hi = self.temperature_min, self.temperature_max
        if lo is not None and hi is not None and lo > hi:
            raise ValidationError({"temperature_max": "The highest temperature must be at least the lowest."})


class ClassroomQuerySet(models.QuerySet):
    def active(self):
        return self.filter(archived_at__isnull=True)

    def for_member(self, user):
        return self.filter(memberships__user=user).distinct()

    def taught_by(self, user):
        return self.filter(memberships__user=user, memberships__role=Membership.INSTRUCTOR).distinct()


class Classroom(GenerationSettings):
    """A class and its settings. Every request made in the class is held to them
    on the server (see ``classrooms.policy``)."""

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    join_code = models.CharField(max_length=16, unique=True, default=random_code)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="classrooms_created"
    )
    created_at = models.DateTimeField(default=timezone.now)
    archived_at = models.DateTimeField(null=True, blank=True)

    # ---- settings
    allowed_models = models.JSONField(
        default=list, blank=True, help_text="Model ids students may use; empty means every registered model."
    )
    default_model = models.CharField(max_length=100, blank=True, help_text="Empty means the site's default model.")
    daily_token_quota = models.PositiveIntegerField(
        default=None,
        verbose_name="Daily token quota per student",
        help_text="Tokens a student may generate per day in this class; 0 means unlimited.",
    )

    objects = ClassroomQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    def regenerate_join_code(self):
        for _ in range(20):
            code = random_code()
            if not Classroom.objects.filter(join_code=code).exists():
                self.join_code = code
                self.save(update_fields=["join_code"])
                return code
        raise RuntimeError("could not find a free join code")

    def save(self, *args, **kwargs):
        self.join_code = normalize_code(self.join_code)
        self.fill_site_defaults()
        if self.daily_token_quota is None:
            self.daily_token_quota = settings.CLASS_DEFAULTS["daily_token_quota"]
        super().save(*args, **kwargs)

    def students(self):
        return (
            self.memberships.filter(role=Membership.STUDENT).select_related("user").order_by("user__username")
        )

    def instructors(self):
        return self.memberships.filter(role=Membership.INSTRUCTOR).select_related("user")


class Membership(models.Model):
    INSTRUCTOR = "instructor"
    STUDENT = "student"
    ROLES = [(INSTRUCTOR, "Instructor"), (STUDENT, "Student")]

    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=ROLES, default=STUDENT)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["classroom", "user"], name="one_membership_per_class")]
        ordering = ["classroom", "role", "user"]

    def __str__(self):
        return f"{self.user} in {self.classroom} ({self.role})"


class Lesson(GenerationSettings):
    """A preset prompt with its own settings. Any setting left empty is the class's."""

    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="lessons")
    title = models.CharField(max_length=120)
    prompt = models.TextField()
    instructions = models.TextField(blank=True, help_text="Shown to students beside the wheel.")
    order = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    model_name = models.CharField(max_length=100, blank=True)
    predict_first = models.BooleanField(
        default=False,
        verbose_name="Predict, then reveal",
        help_text="Students commit a guess for each next token before the wheel is shown.",
    )
    seed = models.BigIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(2**31 - 1)],
        verbose_name="Class seed",
        help_text="Every student's spins land on the same tokens (same seed, same story). Empty: no seed.",
    )

    class Meta:
        ordering = ["classroom", "order", "id"]

    def __str__(self):
        return f"{self.title} ({self.classroom})"


# --------------------------------------------------------------------------- live class wheel


class LiveRound(models.Model):
    """The step the class is spinning together: the lesson's prompt plus the
    tokens the instructor has moved on with. Resetting starts a new round on the
    same step; moving on starts a new round one token further. A class has at
    most one open round (``ended_at`` empty)."""

    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="live_rounds")
    lesson = models.ForeignKey(Lesson, on_delete=models.CASCADE, related_name="live_rounds")
    model_name = models.CharField(max_length=100)
    step = models.PositiveIntegerField(default=0)
    prompt_token_ids = models.JSONField(default=list, blank=True)
    prefix_token_ids = models.JSONField(default=list, blank=True, help_text="Tokens appended to the lesson prompt.")
    context_text = models.TextField(blank=True, help_text="decode(prompt + prefix): what the class sees.")
    threshold = models.FloatField(default=0.01)
    temperature = models.FloatField(
        default=1.0, help_text="The lesson's starting temperature: the chart's probabilities are taken at it."
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    pushed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self):
        return f"{self.classroom} / {self.lesson.title} step {self.step}"

    @property
    def token_ids(self) -> list[int]:
        """The model context of this step."""
        return list(self.prompt_token_ids) + list(self.prefix_token_ids)


class LiveGuess(models.Model):
    """A student's guess on a live round's step, before the wheel was revealed."""

    round = models.ForeignKey(LiveRound, on_delete=models.CASCADE, related_name="guesses")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    token_id = models.IntegerField()
    token_text = models.CharField(max_length=200)
    probability = models.FloatField()
    rank = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]


class LiveSpin(models.Model):
    """One student's landed token on a live round (the first per student counts
    once; later spins by the same student are kept too and shown as such)."""

    round = models.ForeignKey(LiveRound, on_delete=models.CASCADE, related_name="spins")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    session_id = models.CharField(max_length=64, blank=True)
    token_id = models.IntegerField()
    token_text = models.CharField(max_length=200)
    probability = models.FloatField()
    category = models.CharField(max_length=20, default="above_threshold")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]


# --------------------------------------------------------------------------- usage


class DailyUsage(models.Model):
    """Tokens generated per day, user, class and model; quota hits; the usage
    page and the quota both read it. ``user`` is empty for anonymous visitors."""

    date = models.DateField(db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    classroom = models.ForeignKey(Classroom, null=True, blank=True, on_delete=models.SET_NULL)
    model_name = models.CharField(max_length=100)
    tool = models.CharField(max_length=20, default="wheel")
    tokens = models.PositiveIntegerField(default=0)
    sessions = models.PositiveIntegerField(default=0, help_text="Wheel sessions / playground runs started.")
    other_picks = models.PositiveIntegerField(default=0, help_text="Tokens that came from the Other segment.")
    undos = models.PositiveIntegerField(default=0)
    guesses = models.PositiveIntegerField(default=0, help_text="Predict-then-reveal guesses.")
    quota_hits = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-date", "id"]
        indexes = [models.Index(fields=["user", "classroom", "date"])]
        verbose_name_plural = "daily usage"

    def __str__(self):
        return f"{self.date} {self.user or 'anonymous'} {self.model_name}: {self.tokens}"
