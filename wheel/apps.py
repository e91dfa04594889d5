from django.apps import AppConfig


class WheelConfig(AppConfig):
    name = "wheel"
    verbose_name = "Token wheel"
