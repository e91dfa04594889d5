"""Page routes of the wheel app (the API lives in api_urls.py)."""

from django.urls import path

from . import pages

urlpatterns = [
    path("", pages.wheel_page, name="wheel-page"),
    path("runs/wheel/<uuid:pk>/steps/<int:position>/", pages.step_offered, name="run-step-offered"),
]
