from django.urls import path

from . import pages

urlpatterns = [
    path("playground/", pages.playground_page, name="playground-page"),
]
