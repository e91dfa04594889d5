import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


def _idle_cutoff():
    """An anonymous session last used before this moment has expired
    (``WHEEL["ANONYMOUS_TTL_SECONDS"]`` idle); a signed-in user's never does."""
    return timezone.now() - timezone.timedelta(seconds=settings.WHEEL["ANONYMOUS_TTL_SECONDS"])


class WheelSessionQuerySet(models.QuerySet):
    def expired(self):
        return self.filter(owner__isnull=True, last_accessed__lt=_idle_cutoff())

    def live_one(self, pk):
        """The session ``pk`` if it still exists for its user (signed in, or
        used since the cutoff), else None: a read by primary key, the rule
        checked on the row (the request path's lookup, kept cheap)."""
        try:
            session = self.get(pk=pk)
        except self.model.DoesNotExist:
            return None
        return session if session.owner_id is not None or session.last_accessed >= _idle_cutoff() else None


class WheelSession(models.Model):
    """One student's path through the wheel. The token ids are the truth:
    the model context is ``prompt_token_ids`` + the ids of the active events."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="wheel_sessions"
    )
    model_name = models.CharField(max_length=100)
    title = models.CharField(max_length=200, blank=True)
    initial_prompt = models.TextField(blank=True)
    # decode(prompt ids + appended ids), stored at each change so reading a
    # session never needs the model.
    current_text = models.TextField(blank=True)
    prompt_token_ids = models.JSONField(default=list, blank=True)
    # The threshold / temperature / top-p / other_top_k of the last distribution
    # shown, so an append is judged against what the student saw.
    params = models.JSONField(default=dict, blank=True)
    saved = models.BooleanField(default=False)
    # The class (and lesson) the session was made in: its settings apply to
    # every request on it (classrooms.policy); its instructors may read it.
    classroom = models.ForeignKey(
        "classrooms.Classroom", null=True, blank=True, on_delete=models.SET_NULL, related_name="wheel_sessions"
    )
    lesson = models.ForeignKey(
        "classrooms.Lesson", null=True, blank=True, on_delete=models.SET_NULL, related_name="wheel_sessions"
    )
    forked_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="forks")
    # The story seed: spins without a seed of their own draw with one derived
    # from it and their position, so the same seed tells the same story.
    seed = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_accessed = models.DateTimeField(default=timezone.now, db_index=True)

    objects = WheelSessionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.title or f"{self.initial_prompt[:40]!r} ({self.model_name})"

    def active_events(self):
        return self.events.filter(undone_at__isnull=True).order_by("position")


class TokenEvent(models.Model):
    """A token appended to a session. Undo marks it (``undone_at``) instead of
    deleting it, so usage review still sees what students tried."""

    CATEGORY_ABOVE = "above_threshold"
    CATEGORY_OTHER = "other"
    CATEGORY_CHOICES = [(CATEGORY_ABOVE, "Above threshold"), (CATEGORY_OTHER, "Other")]
    METHOD_CHOICES = [("picked", "Picked"), ("other", "Drawn from Other"), ("spun", "Spun")]

    session = models.ForeignKey(WheelSession, on_delete=models.CASCADE, related_name="events")
    position = models.PositiveIntegerField()
    token_id = models.PositiveIntegerField()
    token_text = models.CharField(max_length=200)
    probability = models.FloatField()
    log_probability = models.FloatField(null=True, blank=True)
    category = models.CharField(max_length=20, choices=CATEGORY_CHOICES)
    sampled_from_other = models.BooleanField(default=False)
    method = models.CharField(max_length=10, choices=METHOD_CHOICES, default="picked")
    other_rank = models.PositiveIntegerField(null=True, blank=True)
    # The distribution the choice was judged against (for replay and review).
    threshold = models.FloatField(default=0.01)
    temperature = models.FloatField(default=1.0)
    top_p = models.FloatField(default=1.0)
    # The model's top token at this step (was the choice greedy?) and the seed
    # the draw used, if it was a seeded spin: a replay with it gives this token.
    greedy_token_id = models.PositiveIntegerField(null=True, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    selected_at = models.DateTimeField(default=timezone.now)
    undone_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Why it left the history: "undo" (the student undid it) or "reset" (a new prompt).
    removed_by = models.CharField(max_length=10, blank=True, default="")

    class Meta:
        ordering = ["session", "position", "selected_at"]
        constraints = [
            # Two appends racing for the same slot: one wins, the other is refused.
            models.UniqueConstraint(
                fields=["session", "position"], condition=Q(undone_at__isnull=True), name="one_active_token_per_position"
            )
        ]

    def __str__(self):
        return f"{self.session_id}#{self.position} {self.token_text!r}"


class Guess(models.Model):
    """A student's prediction of the next token before the wheel was revealed,
    judged against the distribution they then saw."""

    session = models.ForeignKey(WheelSession, on_delete=models.CASCADE, related_name="guesses")
    position = models.PositiveIntegerField(help_text="The step guessed: the number of tokens generated before it.")
    context_ids = models.JSONField(default=list, help_text="The model context the guess was for.")
    token_id = models.PositiveIntegerField()
    token_text = models.CharField(max_length=200)
    typed_text = models.CharField(max_length=200, blank=True, help_text="What was typed, when typed.")
    probability = models.FloatField()
    rank = models.PositiveIntegerField()
    category = models.CharField(max_length=20, choices=TokenEvent.CATEGORY_CHOICES)
    top_token_id = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["session", "position", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["session", "position", "context_ids"], name="one_guess_per_step")
        ]

    def __str__(self):
        return f"{self.session_id}#{self.position} guessed {self.token_text!r} (rank {self.rank})"

    @property
    def is_top(self) -> bool:
        return self.rank == 1

    @property
    def in_top3(self) -> bool:
        return self.rank <= 3
