import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class PlaygroundRun(models.Model):
    """A playground stream a signed-in user saved: the input, every generated
    token with the probability it had and whether a person chose it, and the
    settings it ran with. Loading it restores the stream exactly (the token ids
    are the truth; the text is only their decode)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="playground_runs")
    classroom = models.ForeignKey(
        "classrooms.Classroom", null=True, blank=True, on_delete=models.SET_NULL, related_name="playground_runs"
    )
    lesson = models.ForeignKey(
        "classrooms.Lesson", null=True, blank=True, on_delete=models.SET_NULL, related_name="playground_runs"
    )
    title = models.CharField(max_length=200, blank=True)
    model_name = models.CharField(max_length=100)
    input_text = models.TextField()
    prompt_token_ids = models.JSONField(default=list)
    # [{"token_id", "token", "probability", "chosen_by": "model"|"hand",
    #   "probabilities": [{"token_id", "token", "prob"}, ...top 10]}, ...]
    tokens = models.JSONField(default=list)
    # temperature, top_k, top_p, greedy, seed, speed_ms, context_window, max_tokens
    settings = models.JSONField(default=dict)
    finished_reason = models.CharField(max_length=20, blank=True)
    generated_text = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.title or f"{self.input_text[:40]!r} ({self.model_name})"

    @property
    def token_count(self) -> int:
        return len(self.tokens)

    @property
    def hand_chosen_count(self) -> int:
        return sum(1 for t in self.tokens if t.get("chosen_by") == "hand")
