from django.apps import AppConfig


class WheelConfig(AppConfig):
    name = "wheel"
    verbose_name = "Token wheel"

    def ready(self):
        from . import runkind

        runkind.register()  # what classrooms needs from the wheel
