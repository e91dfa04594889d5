"""The wheel API's paths, as the seed writes them (no trailing slash; one is tolerated)."""

from common.urls import api_path, uuid

from . import views

SESSION = "sessions/" + uuid("session_id")

urlpatterns = [
    api_path("sessions", views.SessionListView, "sessions"),
    api_path(SESSION, views.SessionDetailView, "session-detail"),
    api_path(f"{SESSION}/set-prompt", views.SetPromptView, "set-prompt"),
    api_path(f"{SESSION}/next-token-probs", views.NextTokenProbsView, "next-token-probs"),
    api_path(f"{SESSION}/append-token", views.AppendTokenView, "append-token"),
    api_path(f"{SESSION}/undo", views.UndoView, "undo"),
    api_path(f"{SESSION}/statistics", views.StatisticsView, "statistics"),
    api_path(f"{SESSION}/fork", views.ForkView, "fork"),
    api_path(f"{SESSION}/compare", views.CompareView, "compare"),
    api_path(f"{SESSION}/export", views.ExportView, "export"),
    api_path(f"{SESSION}/guess-options", views.GuessOptionsView, "guess-options"),
    api_path(f"{SESSION}/guess", views.GuessView, "guess"),
    api_path(f"{SESSION}/seed", views.SeedView, "seed"),
    api_path("models", views.ModelListView, "models"),
]
