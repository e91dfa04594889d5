"""The playground's API paths (mounted under /api/)."""

from common.urls import api_path, uuid

from . import views

RUN = "playground/runs/" + uuid("run_id")

urlpatterns = [
    api_path("generate-next-token", views.GenerateNextTokenView, "generate-next-token"),
    api_path("playground/runs", views.RunListView, "playground-runs"),
    api_path(RUN, views.RunDetailView, "playground-run"),
    api_path(f"{RUN}/export", views.RunExportView, "playground-run-export"),
]
