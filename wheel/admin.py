from django.contrib import admin

from common.admin import RecordInline, text_start

from .models import Guess, TokenEvent, WheelSession


class TokenEventInline(RecordInline):
    model = TokenEvent
    fields = ("position", "token_text", "token_id", "probability", "category", "method", "selected_at", "undone_at")


@admin.register(WheelSession)
class WheelSessionAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "model_name", "short_prompt", "saved", "created_at", "last_accessed")
    list_filter = ("model_name", "saved", "created_at")
    search_fields = ("id", "initial_prompt", "title", "owner__username")
    raw_id_fields = ("owner", "forked_from")
    inlines = [TokenEventInline]
    short_prompt = text_start("initial_prompt", "prompt")


@admin.register(TokenEvent)
class TokenEventAdmin(admin.ModelAdmin):
    list_display = ("session", "position", "token_text", "probability", "category", "method", "selected_at", "undone_at")
    list_filter = ("category", "method", "sampled_from_other", ("undone_at", admin.EmptyFieldListFilter))
    search_fields = ("token_text", "session__id")
    raw_id_fields = ("session",)


@admin.register(Guess)
class GuessAdmin(admin.ModelAdmin):
    """Predict-then-reveal guesses, for usage review (read-only)."""

    list_display = ("session", "position", "token_text", "rank", "probability", "category", "created_at")
    list_filter = ("category", "created_at")
    search_fields = ("session__id",)
    readonly_fields = [f.name for f in Guess._meta.fields]
