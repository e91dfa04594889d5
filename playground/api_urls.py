"""The playground's API paths (mounted under /api/)."""

from django.urls import re_path

from . import views

RUN = r"(?P<run_id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"

urlpatterns = [
    re_path(r"^generate-next-token/?$", views.GenerateNextTokenView.as_view(), name="generate-next-token"),
    re_path(r"^playground/runs/?$", views.RunListView.as_view(), name="playground-runs"),
    re_path(rf"^playground/runs/{RUN}/?$", views.RunDetailView.as_view(), name="playground-run"),
    re_path(rf"^playground/runs/{RUN}/export/?$", views.RunExportView.as_view(), name="playground-run-export"),
]
