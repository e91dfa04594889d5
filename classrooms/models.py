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


class ClassroomQuerySet(models.QuerySet):
    def active(self):
        return self.filter(archived_at__isnull=True)

    def for_member(self, user):
        return self.filter(memberships__user=user).distinct()

    def taught_by(self, user):
        return self.filter(memberships__user=user, memberships__role=Membership.INSTRUCTOR).distinct()


class Classroom(models.Model):
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
    threshold = models.FloatField(default=0.01, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    students_may_change_threshold = models.BooleanField(default=True)
    temperature_min = models.FloatField(default=0.1, validators=[MinValueValidator(0.01)])
    temperature_max = models.FloatField(default=2.0, validators=[MinValueValidator(0.01)])
    top_p_enabled = models.BooleanField(default=True)
    other_top_k = models.PositiveIntegerField(default=10, validators=[MaxValueValidator(100)])
    context_window = models.PositiveIntegerField(default=64, validators=[MinValueValidator(1)])
    max_tokens = models.PositiveIntegerField(default=200, validators=[MinValueValidator(1)])
    daily_token_quota = models.PositiveIntegerField(
        default=2000, help_text="Tokens a student may generate per day in this class; 0 means unlimited."
    )

    objects = ClassroomQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    def clean(self):
        if self.temperature_min > self.temperature_max:
            raise ValidationError({"temperature_max": "The highest temperature must be at least the lowest."})

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
        super().save(*args, **kwargs)

    # ---- who is who
    def role_of(self, user) -> str | None:
        if not getattr(user, "is_authenticated", False):
            return None
        return self.memberships.filter(user=user).values_list("role", flat=True).first()

    def is_instructor(self, user) -> bool:
        return self.role_of(user) == Membership.INSTRUCTOR

    def can_manage(self, user) -> bool:
        """Instructors of this class and staff."""
        return getattr(user, "is_staff", False) or self.is_instructor(user)

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


class Lesson(models.Model):
    """A preset prompt with its own settings. Any setting left empty is the class's."""

    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="lessons")
    title = models.CharField(max_length=120)
    prompt = models.TextField()
    instructions = models.TextField(blank=True, help_text="Shown to students beside the wheel.")
    order = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    model_name = models.CharField(max_length=100, blank=True)
    threshold = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    students_may_change_threshold = models.BooleanField(null=True, blank=True)
    temperature_min = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.01)])
    temperature_max = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.01)])
    top_p_enabled = models.BooleanField(null=True, blank=True)
    other_top_k = models.PositiveIntegerField(null=True, blank=True, validators=[MaxValueValidator(100)])
    context_window = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    max_tokens = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])

    OVERRIDES = (
        "threshold",
        "students_may_change_threshold",
        "temperature_min",
        "temperature_max",
        "top_p_enabled",
        "other_top_k",
        "context_window",
        "max_tokens",
    )

    class Meta:
        ordering = ["classroom", "order", "id"]

    def __str__(self):
        return f"{self.title} ({self.classroom})"

    def clean(self):
        lo, hi = self.temperature_min, self.temperature_max
        if lo is not None and hi is not None and lo > hi:
            raise ValidationError({"temperature_max": "The highest temperature must be at least the lowest."})


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
    quota_hits = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-date", "id"]
        indexes = [models.Index(fields=["user", "classroom", "date"])]
        verbose_name_plural = "daily usage"

    def __str__(self):
        return f"{self.date} {self.user or 'anonymous'} {self.model_name}: {self.tokens}"
