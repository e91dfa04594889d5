from django.apps import AppConfig


class ClassroomsConfig(AppConfig):
    name = "classrooms"

    def ready(self):
        from . import signals  # noqa: F401 - connects the sign-in receiver
