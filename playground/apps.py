from django.apps import AppConfig


class PlaygroundConfig(AppConfig):
    name = "playground"

    def ready(self):
        from . import runkind

        runkind.register()  # what classrooms needs from the playground
