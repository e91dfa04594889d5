"""The wheel API's paths, as the seed writes them (no trailing slash; one is tolerated)."""

from django.urls import re_path

from . import views

UUID = r"(?P<session_id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"

urlpatterns = [
    re_path(r"^sessions/?$", views.SessionListView.as_view(), name="sessions"),
    re_path(rf"^sessions/{UUID}/?$", views.SessionDetailView.as_view(), name="session-detail"),
    re_path(rf"^sessions/{UUID}/set-prompt/?$", views.SetPromptView.as_view(), name="set-prompt"),
    re_path(rf"^sessions/{UUID}/next-token-probs/?$", views.NextTokenProbsView.as_view(), name="next-token-probs"),
    re_path(rf"^sessions/{UUID}/append-token/?$", views.AppendTokenView.as_view(), name="append-token"),
    re_path(rf"^sessions/{UUID}/undo/?$", views.UndoView.as_view(), name="undo"),
    re_path(rf"^sessions/{UUID}/statistics/?$", views.StatisticsView.as_view(), name="statistics"),
    re_path(rf"^sessions/{UUID}/fork/?$", views.ForkView.as_view(), name="fork"),
    re_path(rf"^sessions/{UUID}/compare/?$", views.CompareView.as_view(), name="compare"),
    re_path(rf"^sessions/{UUID}/export/?$", views.ExportView.as_view(), name="export"),
    re_path(rf"^sessions/{UUID}/guess-options/?$", views.GuessOptionsView.as_view(), name="guess-options"),
    re_path(rf"^sessions/{UUID}/guess/?$", views.GuessView.as_view(), name="guess"),
    re_path(rf"^sessions/{UUID}/seed/?$", views.SeedView.as_view(), name="seed"),
    re_path(r"^models/?$", views.ModelListView.as_view(), name="models"),
]
