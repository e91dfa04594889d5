from django.contrib import admin

from .models import PlaygroundRun


@admin.register(PlaygroundRun)
class PlaygroundRunAdmin(admin.ModelAdmin):
    list_display = ("__str__", "owner", "model_name", "classroom", "token_count", "hand_chosen_count", "created_at")
    list_filter = ("model_name", "finished_reason", "classroom")
    search_fields = ("title", "input_text", "generated_text", "owner__username")
    readonly_fields = ("id", "created_at", "updated_at")
    raw_id_fields = ("owner", "classroom", "lesson")
